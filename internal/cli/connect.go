package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"lobby/internal/client"
)

// releaseTimeout bounds the release sent after Ctrl-C.
const releaseTimeout = 15 * time.Second

func connectCmd(fs *flag.FlagSet) runFunc {
	listen := fs.String("listen", "127.0.0.1:0", "local `ADDRESS` for the VNC viewer (port 0: any free port)")
	return func(ctx context.Context, r *runner, args []string) error {
		c, err := r.client()
		if err != nil {
			return err
		}
		// Listen first, so a busy port does not leave a desktop assigned.
		ln, err := net.Listen("tcp", *listen)
		if err != nil {
			return fmt.Errorf("listen for the VNC viewer: %w", err)
		}
		defer ln.Close()
		if a, ok := ln.Addr().(*net.TCPAddr); ok && !a.IP.IsLoopback() {
			fmt.Fprintf(r.env.Stderr, "lobby: warning: %s is reachable from other machines, and whoever connects to it gets your desktop without a password\n", ln.Addr())
		}
		res, err := c.Connect(ctx, args[0])
		if err != nil {
			return err
		}
		s := &session{c: c, pool: args[0], desktop: res.Desktop.ID, name: res.Desktop.Name, out: &lockedWriter{w: r.env.Stderr}}
		fmt.Fprintf(r.env.Stdout, "Desktop %s from pool %s is ready at\nvnc://%s\n", res.Desktop.Name, args[0], ln.Addr())
		s.logf("Point a VNC viewer at that address; press Ctrl-C to log off and release the desktop.")
		serveErr := s.serve(ctx, ln)

		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
		defer cancel()
		rel, err := c.Release(rctx, s.desktopID())
		if err != nil {
			return errors.Join(serveErr, fmt.Errorf("release desktop %s: %w", s.name, err))
		}
		printReleased(r, rel, s.name)
		return serveErr
	}
}

// session relays local VNC viewers to one desktop.
type session struct {
	c    *client.Client
	pool string
	out  *lockedWriter

	mu      sync.Mutex
	desktop string // ID; may change if the server hands out another
	name    string
}

func (s *session) desktopID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.desktop
}

func (s *session) logf(format string, args ...any) {
	fmt.Fprintf(s.out, format+"\n", args...)
}

// serve accepts viewers until ctx is done, then closes every relay. It
// returns nil after cancellation, or the listener's error.
func (s *session) serve(ctx context.Context, ln net.Listener) error {
	relayCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("accept a viewer: %w", err)
		}
		wg.Go(func() { s.relay(relayCtx, conn) })
	}
}

// relay gets a fresh ticket, opens the console and copies bytes both ways
// until either side ends or ctx is done.
func (s *session) relay(ctx context.Context, conn net.Conn) {
	defer conn.Close()
	peer := conn.RemoteAddr()
	res, err := s.c.Connect(ctx, s.pool)
	if err != nil {
		s.logf("lobby: viewer %s: %v", peer, err)
		return
	}
	s.mu.Lock()
	if res.Desktop.ID != s.desktop {
		s.logf("The server handed out desktop %s instead of %s.", res.Desktop.Name, s.name)
		s.desktop, s.name = res.Desktop.ID, res.Desktop.Name
	}
	s.mu.Unlock()
	ws, err := s.c.DialConsole(ctx, res.VNCURL)
	if err != nil {
		s.logf("lobby: viewer %s: open console: %v", peer, err)
		return
	}
	defer ws.Close()
	s.logf("Viewer %s connected.", peer)
	pipe(conn, ws)
	s.logf("Viewer %s disconnected.", peer)
}

// pipe copies a to b and b to a until one direction ends, then closes both
// so the other ends too.
func pipe(a, b net.Conn) {
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		done <- struct{}{}
	}
	go cp(a, b)
	go cp(b, a)
	<-done
	a.Close()
	b.Close()
	<-done
}

// lockedWriter serializes writes from concurrent relays.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
