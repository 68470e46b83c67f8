package link

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"
)

// dozer is the node's side of one link whose reader dozes, with a
// sweeper of its own: what Hub does for a leaf.
type dozer struct {
	ws    *WS
	watch *watch
	g     ticks
	read  chan []byte // what the reader read, frame by frame
	err   chan error  // the reader's end, or the sweeper's verdict
}

// serveDozer accepts one link per request at the given interval (quiet
// all along: no streams here), over HTTP or HTTPS.
func serveDozer(t *testing.T, interval time.Duration, https bool) (url string, dozers <-chan *dozer) {
	t.Helper()
	ch := make(chan *dozer, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := Accept(w, r)
		if err != nil {
			return
		}
		defer c.Close()
		d := &dozer{ws: c.(*WS), read: make(chan []byte, 16), err: make(chan error, 2)}
		d.watch = newWatch(c, interval)
		d.ws.doze(interval, func() bool { return true }, &d.g)
		ch <- d
		go func() {
			buf := make([]byte, 64)
			for {
				n, err := c.Read(buf)
				if err != nil {
					d.err <- err
					return
				}
				d.read <- append([]byte(nil), buf[:n]...)
			}
		}()
		tick := time.NewTicker(sweepEvery)
		defer tick.Stop()
		for {
			select {
			case <-r.Context().Done():
				return
			case now := <-tick.C:
				d.g.fire(now, false)
				if err := d.watch.check(now); err != nil {
					d.err <- err
					return
				}
			}
		}
	})
	var srv *httptest.Server
	if https {
		srv = httptest.NewTLSServer(h)
	} else {
		srv = httptest.NewServer(h)
	}
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	return srv.URL, ch
}

func waitFor[T any](t *testing.T, what string, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(30 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// A dozing reader still answers at once to what the node writes: an
// echo and a pong come back although the link's next heartbeat is an hour
// away (the reader would sleep until then if the write did not wake it,
// or if the socket kept its raised SO_RCVLOWAT under the read that waits
// for the answer).
func TestDozingReaderWakesForAnswers(t *testing.T) {
	t.Parallel()
	for _, https := range []bool{false, true} {
		t.Run(map[bool]string{false: "http", true: "https"}[https], func(t *testing.T) {
			t.Parallel()
			url, dozers := serveDozer(t, time.Hour, https)
			c, err := Dial(context.Background(), url, false)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			// The agent's side echoes what it reads (and answers pings).
			go func() { _, _ = io.Copy(c, c) }()
			d := waitFor(t, "the link", dozers)
			until(t, "the reader dozes", d.ws.dz.dozing.Load)
			sock := d.ws.dz.cfg.Load().sock
			if sock == nil {
				t.Fatal("no socket found under the link: SO_RCVLOWAT is never raised")
			}
			until(t, "the dozing link's SO_RCVLOWAT is raised", func() bool {
				lowat := 0
				_ = sock.Control(func(fd uintptr) { lowat, _ = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVLOWAT) })
				return lowat == dozeLowat
			})
			for _, msg := range []string{"first", "second"} {
				if _, err := d.ws.Write([]byte(msg)); err != nil {
					t.Fatal(err)
				}
				if got := string(waitFor(t, "the echo of "+msg, d.read)); got != msg {
					t.Fatalf("echo %q, want %q", got, msg)
				}
				until(t, "the reader dozes again", d.ws.dz.dozing.Load)
			}
			d.watch.nextRTT = time.Time{} // the round-trip ping is due
			if err := d.watch.check(time.Now()); err != nil {
				t.Fatal(err)
			}
			until(t, "the round trip is measured", func() bool { return d.watch.RTT() > 0 })
		})
	}
}

// A dozing link lives on its heartbeats; once they stop while the TCP
// connection stays up (a hung agent), the sweeper ends it as silent, and
// a connection the agent closes ends the reader.
func TestDozingLinkLiveness(t *testing.T) {
	t.Parallel()
	const interval = minDoze
	url, dozers := serveDozer(t, interval, false)
	c, err := Dial(context.Background(), url, false)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	go func() { _, _ = io.Copy(io.Discard, c) }()
	stop := make(chan struct{})
	go func() { _ = Heartbeat(c, interval, stop) }()
	d := waitFor(t, "the link", dozers)
	until(t, "the reader dozes", d.ws.dz.dozing.Load)
	select {
	case err := <-d.err:
		t.Fatalf("a live dozing link ended: %v", err)
	case <-time.After(10 * interval):
	}
	// Data the agent sends on its own is read, at the latest when the
	// next heartbeat is due.
	if _, err := c.Write([]byte("report")); err != nil {
		t.Fatal(err)
	}
	if got := string(waitFor(t, "the agent's data", d.read)); got != "report" {
		t.Fatalf("read %q, want report", got)
	}

	close(stop) // hung: no more heartbeats, the connection stays
	if err := waitFor(t, "the silent link's end", d.err); !errors.Is(err, ErrSilent) {
		t.Fatalf("a silent dozing link ended with %v, want ErrSilent", err)
	}

	// Another link, whose agent goes away: the reader sees the end.
	c2, err := Dial(context.Background(), url, false)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = Heartbeat(c2, interval, make(chan struct{})) }()
	d2 := waitFor(t, "the second link", dozers)
	until(t, "the second reader dozes", d2.ws.dz.dozing.Load)
	c2.(*WS).conn.Close() // no closing handshake: the process died
	err = waitFor(t, "the reader's end", d2.err)
	if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, net.ErrClosed) && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("the reader of a closed link ended with %v, want EOF", err)
	}
}

func until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
