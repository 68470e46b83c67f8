package rfb

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

// scriptConn is a net.Conn that reads a fixed input and records what is
// written, so fuzzing needs no goroutines.
type scriptConn struct {
	in  *bytes.Reader
	out bytes.Buffer
}

func (c *scriptConn) Read(b []byte) (int, error)       { return c.in.Read(b) }
func (c *scriptConn) Write(b []byte) (int, error)      { return c.out.Write(b) }
func (c *scriptConn) Close() error                     { return nil }
func (c *scriptConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *scriptConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *scriptConn) SetDeadline(time.Time) error      { return nil }
func (c *scriptConn) SetReadDeadline(time.Time) error  { return nil }
func (c *scriptConn) SetWriteDeadline(time.Time) error { return nil }

// FuzzServeNone feeds arbitrary client bytes to ServeNone: it must never
// panic, must accept only what ParseVersion accepts, and on success must
// have consumed exactly the version and (3.7, 3.8) the choice None.
func FuzzServeNone(f *testing.F) {
	for _, s := range []string{
		"RFB 003.008\n\x01", "RFB 003.007\n\x01", "RFB 003.003\n", "RFB 003.889\n\x01",
		"RFB 003.008\n\x02", "RFB 004.000\n", "RFB 003.00\n", "GET / HTTP/1.1\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		c := &scriptConn{in: bytes.NewReader(in)}
		err := ServeNone(c)
		out := c.out.Bytes()
		if !bytes.HasPrefix(out, []byte("RFB 003.008\n")) {
			t.Fatalf("server did not start with its version: %q", out)
		}
		if err != nil {
			return
		}
		v, perr := ParseVersion(in[:12])
		if perr != nil {
			t.Fatalf("ServeNone accepted %q, which ParseVersion rejects: %v", in[:12], perr)
		}
		used := 12
		if v != V33 {
			used++
			if in[12] != SecNone {
				t.Fatalf("ServeNone accepted security type %d", in[12])
			}
		}
		rest, _ := io.ReadAll(c.in)
		if !bytes.Equal(rest, in[used:]) {
			t.Fatalf("ServeNone consumed %d bytes, want %d", len(in)-len(rest), used)
		}
	})
}
