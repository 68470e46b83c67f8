package bench

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"lobby/internal/lobby"
	"lobby/internal/provider/memory"
	"lobby/internal/rfb"
)

// consoleProvider is the memory provider (a benchmark tool) whose
// desktops named with a prefix in remote get their console from a real
// RFB server with security None at that address instead of the synthetic
// source: the gateway's path (hostconn, relay, WebSocket) is the real one,
// and the console is the same server a direct client or websockify uses.
type consoleProvider struct {
	*memory.Provider
	remote map[string]string // desktop name prefix → RFB server address
}

// DialConsole dials the remote server of the desktop's prefix and
// completes the client side of its None handshake, as the local provider
// does with VNC authentication; other desktops get the synthetic source.
func (p *consoleProvider) DialConsole(ctx context.Context, name string) (net.Conn, error) {
	addr := ""
	for prefix, a := range p.remote {
		if strings.HasPrefix(name, prefix) {
			addr = a
		}
	}
	if addr == "" {
		return p.Provider.DialConsole(ctx, name)
	}
	d, err := p.Get(ctx, name)
	if err != nil {
		return nil, err
	}
	if d.Power != lobby.PowerRunning {
		return nil, lobby.Errorf(lobby.KindConflict, "desktop %s is %s, not running", name, d.Power)
	}
	var dialer net.Dialer
	conn, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("console of %s: %w", name, err)
	}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if err := clientNone(conn); err != nil {
		conn.Close()
		return nil, fmt.Errorf("console of %s: %w", name, err)
	}
	conn.SetDeadline(time.Time{})
	return conn, nil
}

// sourceListener serves an RFB source with security None on loopback,
// like memory.ListenSynthetic but with a source of any size.
type sourceListener struct {
	net.Listener
	src   *memory.Source
	mu    sync.Mutex
	conns map[net.Conn]bool
	done  bool
	wg    sync.WaitGroup
}

func listenSource(addr string, src *memory.Source) (*sourceListener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &sourceListener{Listener: l, src: src, conns: map[net.Conn]bool{}}
	s.wg.Add(1)
	go s.serve()
	return s, nil
}

func (s *sourceListener) serve() {
	defer s.wg.Done()
	for {
		c, err := s.Listener.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.done {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = true
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() { s.mu.Lock(); delete(s.conns, c); s.mu.Unlock(); c.Close() }()
			if rfb.ServeNone(c) == nil {
				_ = s.src.Serve(c)
			}
		}()
	}
}

// Close stops listening, closes open connections and waits for them.
func (s *sourceListener) Close() error {
	err := s.Listener.Close()
	s.mu.Lock()
	s.done = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}
