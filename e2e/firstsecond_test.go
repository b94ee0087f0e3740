package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Status is right from the first second after a docker restart: polled as fast as docker exec
// allows from the moment the restarted container runs, no answer ever shows a registered
// gateway's row without its supervisor. Before, for about a second every row read "not
// supervised … is s6-svscan running on /run/gateways?": status waited for the gateways'
// scanner to answer, not for it to have scanned.
func TestStatusRightFromTheFirstSecondAfterRestart(t *testing.T) {
	b := start(t, nil)
	names := []string{"default", "s1", "s2", "s3"}
	for _, n := range names[1:] {
		b.gw("register", n, "--start")
	}
	for _, n := range names[1:] {
		b.waitUp(n)
	}

	b.restart()
	type row struct {
		Profile    string `json:"profile"`
		Supervised bool   `json:"supervised"`
		Up         bool   `json:"up"`
		Problem    string `json:"problem"`
	}
	answers, failures := 0, 0
	deadline := time.Now().Add(60 * time.Second)
	for {
		require.True(t, time.Now().Before(deadline), "every gateway up within 60 s of the restart (%d answers)", answers)
		code, out := b.exec("gateway", "gateway", "status", "--json")
		if code != 0 {
			// Only while the boot is still going: "still booting", never a half-read tree.
			failures++
			t.Logf("status exit %d: %s", code, strings.TrimSpace(out))
			continue
		}
		var rows []row
		require.NoError(t, json.Unmarshal([]byte(jsonPart(out)), &rows), out)
		answers++
		up := 0
		for _, r := range rows {
			assert.True(t, r.Supervised, "answer %d: %s reads unsupervised: %s", answers, r.Profile, r.Problem)
			assert.NotContains(t, r.Problem, "supervis", "answer %d: %s", answers, r.Profile)
			if r.Up {
				up++
			}
		}
		if t.Failed() {
			return
		}
		if len(rows) == len(names) && up == len(names)-1 { // default is registered down
			break
		}
	}
	t.Logf("%d answers, %d failed calls after the restart", answers, failures)
	assert.Positive(t, answers)
}
