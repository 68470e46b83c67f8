package rfb

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// pipe returns the two ends of a net.Pipe, closed in cleanup.
func pipe(t *testing.T) (a, b net.Conn) {
	t.Helper()
	a, b = net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// runPeer runs script on conn in a goroutine and returns a function that
// waits for it and reports its error.
func runPeer(t *testing.T, conn net.Conn, script func(c net.Conn) error) func() error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		done <- script(conn)
	}()
	return func() error { return <-done }
}

func readN(c net.Conn, n int) ([]byte, error) {
	b := make([]byte, n)
	_, err := io.ReadFull(c, b)
	return b, err
}

func u32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestEncryptPasswordMatchesVncpasswd(t *testing.T) {
	t.Parallel()
	// Produced by `vncpasswd -f` (TigerVNC 1.12).
	tests := []struct {
		password string
		want     []byte
	}{
		{"secret12", []byte{0x24, 0xb5, 0xae, 0x4c, 0xe1, 0x55, 0x03, 0xc6}},
		{"abc", []byte{0x9c, 0x0a, 0x17, 0x2d, 0x34, 0x82, 0xe1, 0x22}},
		{"secret12-and-more", []byte{0x24, 0xb5, 0xae, 0x4c, 0xe1, 0x55, 0x03, 0xc6}},
	}
	for _, tt := range tests {
		got := EncryptPassword(tt.password)
		if !bytes.Equal(got, tt.want) {
			t.Errorf("EncryptPassword(%q) = %x, want %x", tt.password, got, tt.want)
		}
		back, err := DecryptPassword(got)
		if err != nil || back != tt.password[:min(8, len(tt.password))] {
			t.Errorf("DecryptPassword(EncryptPassword(%q)) = %q, %v", tt.password, back, err)
		}
	}
	if _, err := DecryptPassword([]byte{1, 2, 3}); err == nil {
		t.Error("DecryptPassword of 3 bytes: no error")
	}
}

func TestRandomPassword(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 100 {
		p := RandomPassword()
		if len(p) != 8 || strings.Trim(p, passwordAlphabet) != "" {
			t.Fatalf("RandomPassword() = %q: want 8 characters of %q", p, passwordAlphabet)
		}
		if seen[p] {
			t.Fatalf("RandomPassword() repeated %q", p)
		}
		seen[p] = true
	}
}

func TestParseVersion(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    Version
		wantErr string
	}{
		{"RFB 003.008\n", V38, ""},
		{"RFB 003.889\n", V38, ""},
		{"RFB 003.007\n", V37, ""},
		{"RFB 003.003\n", V33, ""},
		{"RFB 003.006\n", V33, ""},
		{"RFB 003.002\n", 0, "unsupported protocol version 3.2"},
		{"RFB 003.009\n", 0, "unsupported protocol version 3.9"},
		{"RFB 004.001\n", 0, "unsupported protocol version 4.1"},
		{"RFB 003.00a\n", 0, "not an RFB protocol version"},
		{"GET / HTTP/1", 0, "not an RFB protocol version"},
		{"RFB 003.008", 0, "not an RFB protocol version"},
	}
	for _, tt := range tests {
		got, err := ParseVersion([]byte(tt.in))
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseVersion(%q) error = %v, want containing %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseVersion(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

// vncServer scripts a VNC server that offers types and checks the
// response for password; result is what it sends after the response.
func vncServer(version string, types []byte, password string, result []byte) func(net.Conn) error {
	return func(c net.Conn) error {
		if _, err := c.Write([]byte(version)); err != nil {
			return err
		}
		got, err := readN(c, 12)
		if err != nil {
			return err
		}
		v, err := ParseVersion(got)
		if err != nil {
			return err
		}
		if v == V33 {
			if _, err := c.Write(u32(SecVncAuth)); err != nil {
				return err
			}
		} else {
			if _, err := c.Write(append([]byte{byte(len(types))}, types...)); err != nil {
				return err
			}
			choice, err := readN(c, 1)
			if err != nil {
				return err
			}
			if choice[0] != SecVncAuth {
				return errors.New("client did not choose VncAuth")
			}
		}
		var challenge [16]byte
		copy(challenge[:], "0123456789abcdef")
		if _, err := c.Write(challenge[:]); err != nil {
			return err
		}
		resp, err := readN(c, 16)
		if err != nil {
			return err
		}
		if password != "" && !bytes.Equal(resp, vncAuthResponse(challenge, password)) {
			return errors.New("wrong challenge response")
		}
		if _, err := c.Write(result); err != nil {
			return err
		}
		if !bytes.Equal(result, u32(0)) {
			return nil
		}
		// The client's next byte must be its ClientInit.
		init, err := readN(c, 1)
		if err != nil {
			return err
		}
		if init[0] != 1 {
			return errors.New("stream not positioned at ClientInit")
		}
		return nil
	}
}

func TestClientAuth(t *testing.T) {
	t.Parallel()
	refuse := func(version string, reason []byte) func(net.Conn) error {
		return func(c net.Conn) error {
			if _, err := c.Write([]byte(version)); err != nil {
				return err
			}
			if _, err := readN(c, 12); err != nil {
				return err
			}
			_, err := c.Write(reason)
			return err
		}
	}
	tests := []struct {
		name    string
		server  func(net.Conn) error
		wantErr string
		authErr bool
	}{
		{name: "3.8 ok", server: vncServer("RFB 003.008\n", []byte{1, 2}, "pw", u32(0))},
		{name: "3.889 ok", server: vncServer("RFB 003.889\n", []byte{2}, "pw", u32(0))},
		{name: "3.7 ok", server: vncServer("RFB 003.007\n", []byte{2, 16}, "pw", u32(0))},
		{name: "3.3 ok", server: vncServer("RFB 003.003\n", nil, "pw", u32(0))},
		{name: "3.8 failed with reason", server: vncServer("RFB 003.008\n", []byte{2}, "",
			cat(u32(1), appendReason(nil, "Authentication failure"))),
			wantErr: "Authentication failure", authErr: true},
		{name: "3.7 failed", server: vncServer("RFB 003.007\n", []byte{2}, "", u32(1)),
			wantErr: "authentication failed", authErr: true},
		{name: "too many", server: vncServer("RFB 003.008\n", []byte{2}, "", u32(2)),
			wantErr: "too many", authErr: true},
		{name: "no VncAuth", server: vncServer("RFB 003.008\n", []byte{1, 19}, "", nil),
			wantErr: "does not offer VNC authentication (2); it offers security types [1 19]"},
		{name: "refused 3.8", server: refuse("RFB 003.008\n", cat([]byte{0}, appendReason(nil, "go away!!"))),
			wantErr: "server refused the connection: go away!!"},
		{name: "refused 3.3", server: refuse("RFB 003.003\n", cat(u32(0), appendReason(nil, "busy"))),
			wantErr: "server refused the connection: busy"},
		{name: "3.3 other type", server: refuse("RFB 003.003\n", u32(1)),
			wantErr: "requires security type 1"},
		{name: "huge reason", server: refuse("RFB 003.008\n", cat([]byte{0}, u32(1<<30))),
			wantErr: "too long"},
		{name: "garbage version", server: refuse("SSH-2.0-Open\n", nil), wantErr: "not an RFB protocol version"},
		{name: "version 4", server: refuse("RFB 004.000\n", nil), wantErr: "unsupported protocol version 4.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			client, server := pipe(t)
			wait := runPeer(t, server, tt.server)
			err := ClientAuth(client, "pw")
			if err == nil {
				_, err = client.Write([]byte{1}) // ClientInit, shared
			}
			client.Close()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("ClientAuth: %v", err)
				}
				if perr := wait(); perr != nil {
					t.Fatalf("server: %v", perr)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ClientAuth error = %v, want containing %q", err, tt.wantErr)
			}
			if got := errors.Is(err, ErrAuthFailed); got != tt.authErr {
				t.Errorf("errors.Is(err, ErrAuthFailed) = %v, want %v", got, tt.authErr)
			}
		})
	}
}

func TestServeNone(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		version  string
		choice   []byte // sent after the types (3.7, 3.8)
		wantRecv []byte // what the client must receive after the version
		wantErr  string
	}{
		{name: "3.8", version: "RFB 003.008\n", choice: []byte{1}, wantRecv: cat([]byte{1, 1}, u32(0))},
		{name: "apple 3.889", version: "RFB 003.889\n", choice: []byte{1}, wantRecv: cat([]byte{1, 1}, u32(0))},
		{name: "3.7 has no SecurityResult for None", version: "RFB 003.007\n", choice: []byte{1}, wantRecv: []byte{1, 1}},
		{name: "3.3", version: "RFB 003.003\n", wantRecv: u32(1)},
		{name: "3.8 wrong type", version: "RFB 003.008\n", choice: []byte{2},
			wantRecv: cat([]byte{1, 1}, u32(1), appendReason(nil, "security type 2 is not offered: use None (1)")),
			wantErr:  "client chose security type 2"},
		{name: "3.7 wrong type", version: "RFB 003.007\n", choice: []byte{16},
			wantRecv: cat([]byte{1, 1}, u32(1)), wantErr: "client chose security type 16"},
		{name: "garbage", version: "GET / HTTP/1", wantErr: "not an RFB protocol version"},
		{name: "version 4", version: "RFB 004.000\n", wantErr: "unsupported protocol version 4.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			client, server := pipe(t)
			wait := runPeer(t, client, func(c net.Conn) error {
				v, err := readN(c, 12)
				if err != nil {
					return err
				}
				if string(v) != "RFB 003.008\n" {
					return errors.New("server sent version " + string(v))
				}
				if _, err := c.Write([]byte(tt.version)); err != nil {
					return err
				}
				first := len(tt.wantRecv)
				if tt.choice != nil {
					first = 2 // the security types, before the choice
				}
				got, err := readN(c, first)
				if err != nil {
					return err
				}
				if !bytes.Equal(got, tt.wantRecv[:first]) {
					return errors.New("client received " + string(got))
				}
				if tt.choice != nil {
					if _, err := c.Write(tt.choice); err != nil {
						return err
					}
					got, err := readN(c, len(tt.wantRecv)-2)
					if err != nil {
						return err
					}
					if !bytes.Equal(got, tt.wantRecv[2:]) {
						return errors.New("client received " + string(got))
					}
				}
				if tt.wantErr != "" {
					return nil
				}
				_, err = c.Write([]byte{1}) // ClientInit
				return err
			})
			err := ServeNone(server)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ServeNone error = %v, want containing %q", err, tt.wantErr)
				}
				server.Close()
				if perr := wait(); perr != nil && tt.wantRecv != nil {
					t.Fatalf("client: %v", perr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ServeNone: %v", err)
			}
			init, err := readN(server, 1)
			if err != nil || init[0] != 1 {
				t.Fatalf("next byte after ServeNone = %v, %v; want ClientInit 1", init, err)
			}
			if err := wait(); err != nil {
				t.Fatalf("client: %v", err)
			}
		})
	}
}

func TestServerInitRoundTrip(t *testing.T) {
	t.Parallel()
	si := ServerInit{Width: 1280, Height: 800, PixelFormat: DefaultPixelFormat, Name: "desk"}
	b, _ := si.AppendBinary(nil)
	got, err := ReadServerInit(bytes.NewReader(b))
	if err != nil || got != si {
		t.Fatalf("ReadServerInit = %+v, %v; want %+v", got, err, si)
	}
	bad := bytes.Clone(b)
	bad[4] = 24
	if _, err := ReadServerInit(bytes.NewReader(bad)); err == nil || !strings.Contains(err.Error(), "24 bits per pixel") {
		t.Fatalf("ReadServerInit with 24 bpp: %v", err)
	}
	r := Rect{X: 1, Y: 2, Width: 3, Height: 4, Encoding: -223}
	rb, _ := r.AppendBinary(nil)
	if got, err := ReadRect(bytes.NewReader(rb)); err != nil || got != r {
		t.Fatalf("ReadRect = %+v, %v", got, err)
	}
	req := AppendFramebufferUpdateRequest(nil, false, 0, 0, 1280, 800)
	if want := []byte{3, 0, 0, 0, 0, 0, 5, 0, 3, 32}; !bytes.Equal(req, want) {
		t.Fatalf("FramebufferUpdateRequest = %v, want %v", req, want)
	}
}
