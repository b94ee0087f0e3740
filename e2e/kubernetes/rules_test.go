package kubernetes

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// rulesDir holds the example Prometheus alerting rules and their promtool unit tests.
const rulesDir = "../../deploy/prometheus"

// promtool is docker/prometheus.sh's promtool; without it the test skips (fails under
// CI=true, where make test builds it first).
func promtool(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("S6GATE_PROMETHEUS_DIR")
	if dir == "" {
		home, _ := os.UserHomeDir()
		dir = filepath.Join(home, ".cache", "s6gate", "prometheus-v0.316.0")
	}
	p := filepath.Join(dir, "promtool")
	if _, err := os.Stat(p); err != nil {
		msg := fmt.Sprintf("no promtool in %s: run docker/prometheus.sh (make test does)", dir)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return p
}

// The example alerting rules are valid for Prometheus (promtool check rules) and each alert
// fires when it should and only then (promtool test rules: s6gate-rules.test.yaml feeds series
// of a failing and a healthy gateway and says which alerts fire when).
func TestAlertRules(t *testing.T) {
	pt := promtool(t)
	for _, args := range [][]string{
		{"check", "rules", "s6gate-rules.yaml"},
		{"test", "rules", "s6gate-rules.test.yaml"},
	} {
		cmd := exec.Command(pt, args...)
		cmd.Dir = rulesDir
		out, err := cmd.CombinedOutput()
		require.NoErrorf(t, err, "promtool %s:\n%s", strings.Join(args, " "), out)
		t.Logf("promtool %s: %s", strings.Join(args, " "), strings.TrimSpace(string(out)))
	}
}

// Only the rules and their tests belong in deploy/prometheus, and every rule file has a test.
func TestAlertRulesAreTested(t *testing.T) {
	entries, err := os.ReadDir(rulesDir)
	require.NoError(t, err)
	var rules, tests []string
	for _, e := range entries {
		switch name := e.Name(); {
		case strings.HasSuffix(name, ".test.yaml"):
			tests = append(tests, strings.TrimSuffix(name, ".test.yaml"))
		case strings.HasSuffix(name, ".yaml"):
			rules = append(rules, strings.TrimSuffix(name, ".yaml"))
		default:
			t.Errorf("%s: not a rule file or a rule test", name)
		}
	}
	require.NotEmpty(t, rules)
	require.ElementsMatch(t, rules, tests)
}
