package link

import (
	"context"
	"io"
	"net"
	"sync"
)

// bufSize is the relay's copy buffer: large enough that a full-screen
// update crosses in few messages.
const bufSize = 256 << 10

var bufPool = sync.Pool{New: func() any { b := make([]byte, bufSize); return &b }}

// Relay copies both ways between a and b until either side ends or ctx
// is cancelled, then closes both. The gateway relays a viewer to a
// console stream with it; an agent, a console stream to the desktop.
func Relay(ctx context.Context, a, b net.Conn) {
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		bp := bufPool.Get().(*[]byte)
		_, _ = io.CopyBuffer(dst, onlyReader{src}, *bp)
		bufPool.Put(bp)
		done <- struct{}{}
	}
	go pipe(a, b)
	go pipe(b, a)
	select {
	case <-done:
	case <-ctx.Done():
	}
	a.Close()
	b.Close()
	<-done
}

// onlyReader hides a source's WriterTo from io.CopyBuffer: a TCP
// connection's WriteTo copies through a 32 KiB buffer of its own, and
// through a link every write is a multiplexer frame, TLS records and
// WebSocket frames, so fewer, larger writes cost less per byte.
type onlyReader struct{ io.Reader }
