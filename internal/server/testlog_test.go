package server

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// testLogger returns a logger whose output a test shows only when it
// fails: the node's own account of what went wrong.
func testLogger(t *testing.T) *slog.Logger {
	t.Helper()
	b := &lockedBuffer{}
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

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
