package memory

import (
	"errors"
	"fmt"
	"net"
	"sync"

	"lobby/internal/rfb"
)

// ListenSynthetic listens on addr (e.g. "127.0.0.1:0") and serves every
// connection a full RFB 3.8 handshake with security type None followed by
// a default Source, so that a benchmark can put a real proxy (websockify)
// in front of the same source the memory provider uses. Connections are
// served in the background: use the listener's Addr to connect and Close
// to stop (it also closes the open connections). Its Accept returns an
// error.
func ListenSynthetic(addr string) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen synthetic: %w", err)
	}
	sl := &synthListener{Listener: l, src: new(Source), conns: map[net.Conn]bool{}}
	sl.wg.Add(1)
	go sl.serve()
	return sl, nil
}

// synthListener serves a Source on its listener until closed.
type synthListener struct {
	net.Listener
	src *Source
	wg  sync.WaitGroup

	mu     sync.Mutex
	conns  map[net.Conn]bool
	closed bool
}

func (l *synthListener) serve() {
	defer l.wg.Done()
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return
		}
		if !l.track(c, true) {
			c.Close()
			return
		}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			defer l.track(c, false)
			defer c.Close()
			if err := rfb.ServeNone(c); err != nil {
				return
			}
			_ = l.src.Serve(c)
		}()
	}
}

// track adds or removes an open connection; adding fails once closed.
func (l *synthListener) track(c net.Conn, add bool) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !add {
		delete(l.conns, c)
		return true
	}
	if l.closed {
		return false
	}
	l.conns[c] = true
	return true
}

// Accept is not available: connections are served in the background.
func (l *synthListener) Accept() (net.Conn, error) {
	return nil, errors.New("listen synthetic: connections are served in the background; do not call Accept")
}

// Close stops listening, closes the open connections and waits for their
// goroutines.
func (l *synthListener) Close() error {
	l.mu.Lock()
	l.closed = true
	for c := range l.conns {
		c.Close()
	}
	l.mu.Unlock()
	err := l.Listener.Close()
	l.wg.Wait()
	return err
}
