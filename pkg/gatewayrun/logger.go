package gatewayrun

import (
	"io"
	"log/slog"
)

// NewLogger is the logger of `gateway run` and `gateway finish`: slog's text format without
// its time= attribute. Their stderr is the slot's logger, whose s6-log stamps every line it
// writes (to the log file and to docker logs), so a time of their own would be the line's
// second timestamp (docs/operations.md, "Logs").
func NewLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{ReplaceAttr: dropTime}))
}

// dropTime removes the record's own time: the top-level time.Time attribute the handler
// adds (a caller's "time" that is a string, or inside a group, stays).
func dropTime(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.TimeKey && a.Value.Kind() == slog.KindTime {
		return slog.Attr{}
	}
	return a
}
