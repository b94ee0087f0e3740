package boot

import "path/filepath"

// layout is every path /init reads or writes. The binary only ever uses defaultLayout(): there
// is deliberately no environment variable or flag that moves them, so what the tests exercise
// (in a private mount namespace) is the production layout. Unit tests of the helpers build one
// under a temporary directory (layoutUnder, in the tests).
type layout struct {
	Run            string // /run
	VarRun         string // /var/run, made a symlink to Run
	S6             string // /run/s6, made anew at every boot
	Basedir        string // /run/s6/basedir (bin/halt)
	Scandir        string // /run/service, made anew (emptied) at every boot
	ContEnv        string // /run/s6/container_environment
	LegacyServices string // /run/s6/legacy-services, copies of /etc/services.d/*
	Results        string // /run/s6-linux-init-container-results (exitcode)
	ContInit       string // /etc/cont-init.d
	ServicesD      string // /etc/services.d
	ContFinish     string // /etc/cont-finish.d
	S6rcSource     string // /etc/s6-overlay/s6-rc.d, the s6-rc source tree (s6rc_linux.go)
	S6rcLive       string // /run/s6-rc, its live state, made anew at every boot
	Command        string // /command, symlinks to the s6 and execline tools
	Svscan         string // /usr/bin/s6-svscan, exec'd by absolute path
	Tools          []toolSource
}

// toolSource says which programs get a /command symlink: every entry of Dir whose name
// starts with Prefix (an empty Prefix takes them all). Earlier sources win on a name clash.
type toolSource struct {
	Dir    string
	Prefix string
}

func defaultLayout() layout {
	return layout{
		Run:            "/run",
		VarRun:         "/var/run",
		S6:             "/run/s6",
		Basedir:        "/run/s6/basedir",
		Scandir:        "/run/service",
		ContEnv:        "/run/s6/container_environment",
		LegacyServices: "/run/s6/legacy-services",
		Results:        "/run/s6-linux-init-container-results",
		ContInit:       "/etc/cont-init.d",
		ServicesD:      "/etc/services.d",
		ContFinish:     "/etc/cont-finish.d",
		S6rcSource:     "/etc/s6-overlay/s6-rc.d",
		S6rcLive:       "/run/s6-rc",
		Command:        "/command",
		Svscan:         "/usr/bin/s6-svscan",
		Tools: []toolSource{
			{Dir: "/usr/lib/execline/bin"},                  // Debian's execline programs
			{Dir: "/usr/bin", Prefix: "s6-"},                // Debian's s6 programs
			{Dir: "/usr/bin", Prefix: "ucspilogd"},          // the one s6 program without the prefix
			{Dir: "/usr/local/bin", Prefix: "with-contenv"}, // s6gate's own, installed by the image
			{Dir: "/usr/local/bin", Prefix: "printcontenv"},
			{Dir: "/usr/local/bin", Prefix: "s6-rc"}, // s6rc_linux.go
		},
	}
}

// asideDirs are the directories under /run that every boot makes anew: what the last boot
// left in them is set aside at boot (prepareRun) and removed in the background (removeOld).
func (l layout) asideDirs() []string { return []string{l.S6, l.Scandir, l.Results, l.S6rcLive} }

func (l layout) exitcodeFile() string  { return filepath.Join(l.Results, "exitcode") }
func (l layout) haltPath() string      { return filepath.Join(l.Basedir, "bin", "halt") }
func (l layout) controlDir() string    { return filepath.Join(l.Scandir, ".s6-svscan") }
func (l layout) svscanPidFile() string { return filepath.Join(l.S6, "svscan.pid") }
func (l layout) stage2PidFile() string { return filepath.Join(l.S6, "stage2.pid") }
func (l layout) stopLock() string      { return filepath.Join(l.S6, "stopping") }
func (l layout) bootStopFile() string  { return filepath.Join(l.S6, "stop-requested-at-boot") }

// tool returns the path of an s6 program: /command/NAME when /init managed to create it, else
// the Debian location, so a read-only /command never stops the boot.
func (l layout) tool(name string) string {
	p := filepath.Join(l.Command, name)
	if isExecutable(p) {
		return p
	}
	return filepath.Join(filepath.Dir(l.Svscan), name)
}
