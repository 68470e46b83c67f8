package server

import (
	"log/slog"
	"strings"
	"testing"

	"lobby/internal/syncbuf"
)

// testLogger returns a logger whose output a test shows only when it
// fails: the node's own account of what went wrong.
func testLogger(t *testing.T) *slog.Logger {
	t.Helper()
	b := &syncbuf.Buffer{}
	t.Cleanup(func() { // registered first, so it runs after the node stops
		if t.Failed() {
			lines := strings.Split(strings.TrimSpace(b.String()), "\n")
			if len(lines) > 200 {
				lines = lines[len(lines)-200:]
			}
			t.Logf("the node's log (last %d lines):\n%s", len(lines), strings.Join(lines, "\n"))
		}
	})
	return slog.New(slog.NewTextHandler(b, nil))
}
