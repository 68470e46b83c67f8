package link

import (
	"context"
	"io"
	"net"
	"sync"
)

// Relay buffers: a direction that is idle (most of a console session's
// life) waits in a read with a small buffer of its own; one that streams
// (a read filled half of its buffer) reads into a big one from a pool
// until a read is small again. A direction that stops right after a
// burst keeps the big one until its next small read.
const (
	smallBuf = 16 << 10
	bigBuf   = 256 << 10 // a full-screen update crosses in few messages
)

var bigBufs = sync.Pool{New: func() any { b := make([]byte, bigBuf); return &b }}

// Relay copies both ways between a and b until either side ends or ctx
// is cancelled, then closes both. The gateway relays a viewer to a
// console stream with it; an agent, a console stream to the desktop.
func Relay(ctx context.Context, a, b net.Conn) {
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		copyAdaptive(dst, src)
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

// copyAdaptive copies src to dst until either fails. Reads are large
// while data streams, which matters through a link, where every write is
// a multiplexer message, TLS records and WebSocket frames; a direction
// whose last read was small holds only its small buffer.
func copyAdaptive(dst io.Writer, src io.Reader) {
	small := make([]byte, smallBuf)
	buf := small
	var big *[]byte
	defer func() {
		if big != nil {
			bigBufs.Put(big)
		}
	}()
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
		switch {
		case big == nil && n >= len(buf)/2:
			big = bigBufs.Get().(*[]byte)
			buf = *big
		case big != nil && n < smallBuf/2:
			bigBufs.Put(big)
			big, buf = nil, small
		}
	}
}
