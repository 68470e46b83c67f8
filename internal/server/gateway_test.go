package server

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"lobby/internal/rfb"
)

// requireDesktops skips without TigerVNC, except under CI where a missing
// package is a failure.
func requireDesktops(t *testing.T) {
	t.Helper()
	for _, bin := range []string{"Xvnc", "twm", "xterm"} {
		if _, err := exec.LookPath(bin); err != nil {
			msg := bin + " is missing: run `make test`, which installs tigervnc-standalone-server, twm and xterm"
			if os.Getenv("CI") == "true" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
}

// sharedDir makes a directory that desktop users can traverse (t.TempDir's
// parent is 0700 and owned by root).
func sharedDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "lobby-test-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// TestRealDesktopThroughGateway runs `lobby dev`'s wiring with a real Xvnc
// desktop and speaks RFB through /gateway/vnc to a framebuffer update.
func TestRealDesktopThroughGateway(t *testing.T) {
	t.Parallel()
	requireDesktops(t)
	data := sharedDir(t)
	s, base := start(t, Config{
		Listen: "127.0.0.1:0", DataDir: data, PlainHTTP: true, AdminPassword: adminPW,
		LocalAgent: true, Demo: 1, Logger: testLogger(t),
	})
	// Desktops outlive a node by design; the test removes its own.
	t.Cleanup(func() {
		ctx := context.Background()
		ds, _ := s.agent.prov.List(ctx)
		for _, d := range ds {
			if err := s.agent.prov.Delete(ctx, d.Name); err != nil {
				t.Errorf("delete %s: %v", d.Name, err)
			}
		}
	})
	admin := login(t, base, "admin", adminPW)
	var seen bytes.Buffer // every API answer, scanned for the secret below
	eventually(t, "the demo desktop running", func() bool {
		var p struct{ Counts struct{ Free int } }
		admin.want(200, "GET", "/api/v1/pools/demo", nil, &p)
		return p.Counts.Free == 1
	})
	var c struct {
		Desktop struct{ ID, Name string }
		VNCURL  string `json:"vnc_url"`
	}
	admin.want(200, "POST", "/api/v1/connect", map[string]string{"pool": "demo"}, &c)
	raw, _ := json.Marshal(c)
	seen.Write(raw)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	wsURL := "ws" + strings.TrimPrefix(base, "http") + c.VNCURL
	ws, resp, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{Subprotocols: []string{"binary"}})
	if err != nil {
		t.Fatalf("dial gateway: %v (%v)", err, resp)
	}
	if ws.Subprotocol() != "binary" {
		t.Fatalf("subprotocol %q, want binary", ws.Subprotocol())
	}
	conn := websocket.NetConn(ctx, ws, websocket.MessageBinary)
	defer conn.Close()
	viewerHandshake(t, conn)
	if _, err := conn.Write([]byte{1}); err != nil { // ClientInit, shared
		t.Fatal(err)
	}
	si, err := rfb.ReadServerInit(conn)
	if err != nil {
		t.Fatal(err)
	}
	if si.Width != 1280 || si.Height != 800 {
		t.Fatalf("ServerInit %dx%d, want 1280x800", si.Width, si.Height)
	}
	if _, err := conn.Write(rfb.AppendFramebufferUpdateRequest(nil, false, 0, 0, si.Width, si.Height)); err != nil {
		t.Fatal(err)
	}
	var hdr [4]byte
	if _, err := io.ReadFull(conn, hdr[:]); err != nil {
		t.Fatal(err)
	}
	if hdr[0] != 0 || binary.BigEndian.Uint16(hdr[2:]) == 0 {
		t.Fatalf("got message %v, want a FramebufferUpdate with rectangles", hdr)
	}
	rect, err := rfb.ReadRect(conn)
	if err != nil {
		t.Fatal(err)
	}
	if rect.Width == 0 || rect.Height == 0 {
		t.Fatalf("empty first rectangle %+v", rect)
	}

	// The ticket was single use.
	_, resp, err = websocket.Dial(ctx, wsURL, nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("reused ticket: err=%v resp=%v, want 401", err, resp)
	}

	// The session is visible as connected.
	eventually(t, "the assignment marked connected", func() bool {
		var l struct{ Items []struct{ Connected bool } }
		admin.want(200, "GET", "/api/v1/assignments", nil, &l)
		return len(l.Items) == 1 && l.Items[0].Connected
	})

	// The console secret stays on the host: not in the store, not in any
	// API answer.
	pw, err := os.ReadFile(filepath.Join(data, "desktops", "desktops", c.Desktop.Name, "passwd"))
	if err != nil {
		pw, err = findPasswd(data, c.Desktop.Name)
	}
	if err != nil {
		t.Fatal(err)
	}
	secret, err := rfb.DecryptPassword(pw)
	if err != nil || len(secret) < 6 {
		t.Fatalf("secret %q: %v", secret, err)
	}
	for _, path := range []string{"/api/v1/desktops", "/api/v1/desktops/" + c.Desktop.ID, "/api/v1/jobs", "/api/v1/audit", "/api/v1/hosts", "/api/v1/assignments", "/api/v1/pools"} {
		var v json.RawMessage
		admin.want(200, "GET", path, nil, &v)
		seen.Write(v)
	}
	if bytes.Contains(seen.Bytes(), []byte(secret)) {
		t.Fatal("an API answer contains the console secret")
	}
	for _, f := range []string{"lobby.db", "lobby.db-wal"} {
		b, err := os.ReadFile(filepath.Join(data, f))
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(secret)) || bytes.Contains(b, pw) {
			t.Fatalf("%s contains the console secret", f)
		}
	}
}

// findPasswd locates a desktop's password file under the state directory.
func findPasswd(root, desktop string) ([]byte, error) {
	var found string
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Name() == "passwd" && filepath.Base(filepath.Dir(p)) == desktop {
			found = p
		}
		return nil
	})
	if found == "" {
		return nil, os.ErrNotExist
	}
	return os.ReadFile(found)
}

// viewerHandshake plays a 3.8 viewer that expects security type None.
func viewerHandshake(t *testing.T, conn io.ReadWriter) {
	t.Helper()
	var ver [12]byte
	if _, err := io.ReadFull(conn, ver[:]); err != nil {
		t.Fatal(err)
	}
	if string(ver[:]) != "RFB 003.008\n" {
		t.Fatalf("server version %q", ver)
	}
	if _, err := conn.Write(ver[:]); err != nil {
		t.Fatal(err)
	}
	var types [2]byte
	if _, err := io.ReadFull(conn, types[:]); err != nil {
		t.Fatal(err)
	}
	if types != [2]byte{1, rfb.SecNone} {
		t.Fatalf("security types %v, want only None", types)
	}
	if _, err := conn.Write([]byte{rfb.SecNone}); err != nil {
		t.Fatal(err)
	}
	var result [4]byte
	if _, err := io.ReadFull(conn, result[:]); err != nil {
		t.Fatal(err)
	}
	if binary.BigEndian.Uint32(result[:]) != 0 {
		t.Fatalf("security result %v", result)
	}
}
