//go:build linux && (!(amd64 || arm64) || s6gate_nosettlefork)

package settlefork

import "errors"

// Plan is the settle child's plan; see the amd64/arm64 build. Here there is no settle child.
type Plan struct {
	Name                                 string
	HomeFD, ExecFD, NotifyFD, LogFD, PID int
	StartTime                            uint64
	Deadline                             int64
	StateFile, TempFile                  string
	Mode                                 uint32
	Expect, Next, LogLine, HandOffLine   []byte
	NextTimeAt, LogTimeAt, HandOffAt     int
	Path                                 string
	Argv, Env                            []string
}

// TimeLayout and LogTimeLayout are as in the amd64/arm64 build.
const (
	TimeLayout    = "2006-01-02T15:04:05Z"
	LogTimeLayout = "2006-01-02T15:04:05.000Z"
)

// Start fails: the settle child is built for linux/amd64 and linux/arm64 only (and not with
// the build tag s6gate_nosettlefork); the caller starts the watcher program instead.
func Start(*Plan) (int, error) {
	return 0, errors.New("settlefork: no settle child in this build")
}
