package link

import (
	"crypto/tls"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

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

// TestMultiplexerWriteIsOneSocketWrite: a stream's write, which yamux
// sends as a header and a body and TLS seals into 17 records, reaches the
// socket in one write(2).
func TestMultiplexerWriteIsOneSocketWrite(t *testing.T) {
	t.Parallel()
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
	defer ln.Close()
	got := make(chan []byte, 1)
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
		s, err := sess.Accept()
		if err != nil {
			return
		}
		b, _ := io.ReadAll(s)
		got <- b
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	counted := &countingConn{Conn: raw}
	conn := tls.Client(newWS(raw, raw, counted, true), ClientTLS(ca.Cert, ca.Fingerprint(), nil, "hub", ""))
	if err := conn.Handshake(); err != nil {
		t.Fatal(err)
	}
	sess, err := Client(conn)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
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
