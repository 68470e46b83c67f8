package link

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/yamux"

	"lobby/internal/pki"
)

// countingConn counts the writes that reach the socket.
type countingConn struct {
	net.Conn
	writes atomic.Int64
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// muxPair links a yamux client to a yamux server over TLS in link
// WebSockets on a real TCP connection, as agents and hubs are; the
// client's socket writes go through wrap. It returns the client's
// session and the server's first accepted stream.
func muxPair(t *testing.T, wrap func(net.Conn) io.Writer) (*yamux.Session, <-chan net.Conn) {
	t.Helper()
	ca, err := pki.NewCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.IssueTLS(pki.Identity{Kind: pki.KindNode, ID: "1", Name: "hub"}, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{}) // the server's side lives until the test ends
	t.Cleanup(func() { close(done); ln.Close() })
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		sess, err := server(tls.Server(newWS(c, c, c, false), ServerTLS(cert)), time.Minute)
		if err != nil {
			return
		}
		defer sess.Close()
		if s, err := sess.Accept(); err == nil {
			accepted <- s
		}
		<-done
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	conn := tls.Client(newWS(raw, raw, wrap(raw), true), ClientTLS(ca.Cert, ca.Fingerprint(), nil, "hub", ""))
	if err := conn.Handshake(); err != nil {
		t.Fatal(err)
	}
	sess, err := Client(conn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sess.Close() })
	return sess, accepted
}

// TestMultiplexerWriteIsOneSocketWrite: a stream's write, which yamux
// sends as a header and a body and TLS seals into 17 records, reaches the
// socket in one write(2).
func TestMultiplexerWriteIsOneSocketWrite(t *testing.T) {
	t.Parallel()
	var counted *countingConn
	sess, accepted := muxPair(t, func(c net.Conn) io.Writer { counted = &countingConn{Conn: c}; return counted })
	got := make(chan []byte, 1)
	go func() {
		s, ok := <-accepted
		if ok {
			b, _ := io.ReadAll(s)
			got <- b
		}
	}()
	s, err := sess.Open()
	if err != nil {
		t.Fatal(err)
	}
	payload := pattern(256<<10, 3)
	before := counted.writes.Load()
	if _, err := s.Write(payload); err != nil {
		t.Fatal(err)
	}
	if n := counted.writes.Load() - before; n != 1 {
		t.Errorf("a 256 KiB stream write took %d socket writes, want 1", n)
	}
	s.Close()
	select {
	case b := <-got:
		if string(b) != string(payload) {
			t.Fatalf("received %d bytes, not the %d written", len(b), len(payload))
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the stream's bytes did not arrive")
	}
}

// TestBodyLikeAHeaderIsSent: a 12-byte body that reads like a yamux data
// header is sent at once; taken for a header, it was held with everything
// written after it (heartbeats, pongs) until the multiplexer's next write.
func TestBodyLikeAHeaderIsSent(t *testing.T) {
	t.Parallel()
	sess, accepted := muxPair(t, func(c net.Conn) io.Writer { return c })
	s, err := sess.Open()
	if err != nil {
		t.Fatal(err)
	}
	var peer net.Conn
	for i, body := range [][]byte{
		// Two pointer moves of a VNC viewer: type 5, no button, x, y.
		{5, 0, 0x01, 0x00, 0x00, 0x80, 5, 0, 0x01, 0x02, 0x00, 0x81},
		// A yamux data header itself (a multiplexer inside a stream).
		{0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 4},
	} {
		if _, err := s.Write(body); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			select {
			case peer = <-accepted:
			case <-time.After(30 * time.Second):
				t.Fatal("the stream was not accepted")
			}
		}
		_ = peer.SetReadDeadline(time.Now().Add(30 * time.Second))
		got := make([]byte, len(body))
		if _, err := io.ReadFull(peer, got); err != nil || !bytes.Equal(got, body) {
			t.Fatalf("the peer read %x, %v; want %x: the body was held back", got, err, body)
		}
	}
}
