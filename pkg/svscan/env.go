package svscan

import (
	"slices"
	"strings"
)

// KeepEnvPrefix is the prefix of the carriers that take the container's "unsecure" variables
// past an isolated slot's supervisor: S6GATE_KEEPENV_TMPDIR=/scratch carries TMPDIR=/scratch.
const KeepEnvPrefix = "S6GATE_KEEPENV_"

// UnsecureEnv lists the variables that glibc 2.36 (Debian bookworm) removes from, or rewrites
// in, the environment of a program exec'd with AT_SECURE — as an isolated slot's s6-supervise
// is, since its real uid is not its effective one: elf/dl-support.c and rtld.c unset
// sysdeps/generic/unsecvars.h's UNSECURE_ENVVARS (22 names: glibc 2.36 no longer lists
// LD_USE_LOAD_BIAS), and the tunables code (elf/dl-tunables.c) erases the environment alias
// MALLOC_CHECK_ and strips every tunable of level SXID_ERASE out of GLIBC_TUNABLES. The list is
// pinned against the real loader by TestUnsecureEnvIsWhatGlibcDrops. Every process below the
// supervisor inherits the loss (the run script and whatever it starts); `gateway run` puts the
// variables back for the command with RestoreKeptEnv.
var UnsecureEnv = []string{
	"GCONV_PATH", "GETCONF_DIR", "GLIBC_TUNABLES", "HOSTALIASES",
	"LD_AUDIT", "LD_DEBUG", "LD_DEBUG_OUTPUT", "LD_DYNAMIC_WEAK", "LD_HWCAP_MASK",
	"LD_LIBRARY_PATH", "LD_ORIGIN_PATH", "LD_PRELOAD", "LD_PROFILE", "LD_SHOW_AUXV",
	"LOCALDOMAIN", "LOCPATH", "MALLOC_CHECK_", "MALLOC_TRACE", "NIS_PATH", "NLSPATH",
	"RESOLV_HOST_CONF", "RES_OPTIONS", "TMPDIR", "TZDIR",
}

// KeepEnv returns environ as an isolated supervisor gets it: each variable of UnsecureEnv is
// replaced by its carrier (KeepEnvPrefix+NAME=value), which AT_SECURE leaves alone. Carriers
// already in environ are dropped, so only the values of this environment travel. The order of
// the other variables is kept.
func KeepEnv(environ []string) []string {
	out := make([]string, 0, len(environ))
	for _, kv := range environ {
		name, value, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(name, KeepEnvPrefix):
		case slices.Contains(UnsecureEnv, name):
			out = append(out, KeepEnvPrefix+name+"="+value)
		default:
			out = append(out, kv)
		}
	}
	return out
}

// RestoreKeptEnv undoes KeepEnv: each carrier of a name in UnsecureEnv becomes that variable
// again (replacing one of the same name), and every carrier is removed, also one whose name is
// not in UnsecureEnv (nothing else travels this way). `gateway run` calls it on its own
// environment before anything uses it.
func RestoreKeptEnv(environ []string) []string {
	kept := map[string]string{}
	for _, kv := range environ {
		name, value, _ := strings.Cut(kv, "=")
		if n, ok := strings.CutPrefix(name, KeepEnvPrefix); ok && slices.Contains(UnsecureEnv, n) {
			kept[n] = value
		}
	}
	out := make([]string, 0, len(environ))
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if _, ok := kept[name]; ok || strings.HasPrefix(name, KeepEnvPrefix) {
			continue
		}
		out = append(out, kv)
	}
	for _, n := range UnsecureEnv {
		if v, ok := kept[n]; ok {
			out = append(out, n+"="+v)
		}
	}
	return out
}
