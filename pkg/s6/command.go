package s6

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
)

// Tools runs s6 programs from one command directory (S6_COMMAND_DIR).
type Tools struct {
	Dir string
}

// CommandError is a failed s6 tool: which object and action it was for, the tool, its exit
// code (-1 when it could not be run at all) and what it printed on stderr.
type CommandError struct {
	Object   string // the slot or scan directory acted on, e.g. "gateway-coder"
	Action   string // what the caller was doing: start, stop, restart, rescan, status, …
	Tool     string // e.g. "s6-svc"
	Args     []string
	ExitCode int
	Stderr   string
	Err      error // set when the tool could not be started
}

func (e *CommandError) Error() string {
	detail := strings.Join(strings.Fields(e.Stderr), " ")
	if e.Err != nil {
		detail = e.Err.Error()
	}
	if detail == "" {
		detail = "no message"
	}
	return fmt.Sprintf("%s %s: %s failed (rc=%d): %s", e.Action, e.Object, e.Tool, e.ExitCode, detail)
}

func (e *CommandError) Unwrap() error { return e.Err }

// Exit codes the s6 tools share (s6 documentation).
const (
	RCUsage      = 100 // bad usage, or "supervisor not listening"
	RCSystem     = 111 // system call failed (permissions, missing files)
	RCTimeout    = 99  // s6-svc -w…/s6-svwait time-out
	maxStderrLen = 2048
)

// Run runs tool with args. object and action only label a failure.
func (t Tools) Run(ctx context.Context, object, action, tool string, args ...string) error {
	_, err := t.Output(ctx, object, action, tool, args...)
	return err
}

// Output runs tool with args and returns its stdout.
func (t Tools) Output(ctx context.Context, object, action, tool string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(t.Dir, tool), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &capped{buf: &stderr, max: maxStderrLen}
	err := cmd.Run()
	if err == nil {
		return stdout.Bytes(), nil
	}
	ce := &CommandError{Object: object, Action: action, Tool: tool, Args: args, ExitCode: -1, Stderr: stderr.String()}
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() >= 0 {
		ce.ExitCode = ee.ExitCode()
	} else {
		ce.Err = err
	}
	if ctx.Err() != nil {
		ce.Err = ctx.Err()
	}
	return stdout.Bytes(), ce
}

// capped keeps the first max bytes written to it and drops the rest, so a chatty tool cannot
// grow an error message without bound.
type capped struct {
	buf *bytes.Buffer
	max int
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.max - c.buf.Len(); room > 0 {
		if len(p) > room {
			c.buf.Write(p[:room])
		} else {
			c.buf.Write(p)
		}
	}
	return len(p), nil
}
