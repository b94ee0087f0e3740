package boot

import "testing"

func TestIsJobName(t *testing.T) {
	for _, n := range []string{"s6gate-stage2", "finish", "crash", "halt", "s6gate-remove-old", "SIGTERM", "SIGINT", "SIGQUIT"} {
		if !IsJobName(n) {
			t.Errorf("IsJobName(%q) = false", n)
		}
	}
	for _, n := range []string{"init", "", "SIGHUP", "gateway", "s6gate"} {
		if IsJobName(n) {
			t.Errorf("IsJobName(%q) = true", n)
		}
	}
}
