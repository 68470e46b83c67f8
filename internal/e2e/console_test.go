package e2e

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"lobby/internal/rfb"
)

// connect asks for a console of the user's desktop in pool, as the
// portal does, and returns the desktop and its console URL.
func connect(tb testing.TB, user *client, pool string) (apiDesktop, string) {
	tb.Helper()
	var c struct {
		Desktop apiDesktop
		VNCURL  string `json:"vnc_url"`
	}
	user.want(http.StatusOK, "POST", "/api/v1/connect", map[string]string{"pool": pool}, &c)
	if c.VNCURL == "" {
		tb.Fatalf("connect to %s gave no console URL", pool)
	}
	return c.Desktop, c.VNCURL
}

// viewConsole opens the console through the node's gateway as a viewer
// does (noVNC's WebSocket, RFB 3.8 with security None), and reads the
// framebuffer's size and the first rectangle of an update.
func viewConsole(ctx context.Context, base, vncURL string) (rfb.ServerInit, error) {
	var si rfb.ServerInit
	ws, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+vncURL, &websocket.DialOptions{Subprotocols: []string{"binary"}})
	if err != nil {
		status := ""
		if resp != nil {
			status = resp.Status
		}
		return si, fmt.Errorf("open the gateway: %v %s", err, status)
	}
	conn := websocket.NetConn(ctx, ws, websocket.MessageBinary)
	defer conn.Close()
	if err := viewerHandshake(conn); err != nil {
		return si, err
	}
	if _, err := conn.Write([]byte{1}); err != nil { // ClientInit, shared
		return si, err
	}
	if si, err = rfb.ReadServerInit(conn); err != nil {
		return si, fmt.Errorf("ServerInit: %w", err)
	}
	if si.Width == 0 || si.Height == 0 {
		return si, fmt.Errorf("ServerInit with an empty framebuffer %dx%d", si.Width, si.Height)
	}
	if _, err := conn.Write(rfb.AppendFramebufferUpdateRequest(nil, false, 0, 0, si.Width, si.Height)); err != nil {
		return si, err
	}
	var hdr [4]byte
	if _, err := io.ReadFull(conn, hdr[:]); err != nil {
		return si, fmt.Errorf("FramebufferUpdate: %w", err)
	}
	if hdr[0] != 0 || binary.BigEndian.Uint16(hdr[2:]) == 0 {
		return si, fmt.Errorf("got message %v, want a FramebufferUpdate with rectangles", hdr)
	}
	rect, err := rfb.ReadRect(conn)
	if err != nil {
		return si, fmt.Errorf("first rectangle: %w", err)
	}
	if rect.Width == 0 || rect.Height == 0 {
		return si, fmt.Errorf("empty first rectangle %+v", rect)
	}
	return si, nil
}

// viewerHandshake plays a 3.8 viewer that expects security type None:
// the agent authenticated to the desktop already.
func viewerHandshake(conn io.ReadWriter) error {
	var ver [12]byte
	if _, err := io.ReadFull(conn, ver[:]); err != nil {
		return fmt.Errorf("server version: %w", err)
	}
	if string(ver[:]) != "RFB 003.008\n" {
		return fmt.Errorf("server version %q, want RFB 003.008", ver)
	}
	if _, err := conn.Write(ver[:]); err != nil {
		return err
	}
	var types [2]byte
	if _, err := io.ReadFull(conn, types[:]); err != nil {
		return fmt.Errorf("security types: %w", err)
	}
	if types != [2]byte{1, rfb.SecNone} {
		return fmt.Errorf("security types %v, want only None", types)
	}
	if _, err := conn.Write([]byte{rfb.SecNone}); err != nil {
		return err
	}
	var result [4]byte
	if _, err := io.ReadFull(conn, result[:]); err != nil {
		return fmt.Errorf("security result: %w", err)
	}
	if binary.BigEndian.Uint32(result[:]) != 0 {
		return fmt.Errorf("security result %v, want OK", result)
	}
	return nil
}

// console connects user to its desktop in pool and checks that the
// console shows a framebuffer; it returns the desktop.
func console(tb testing.TB, base string, user *client, pool string) apiDesktop {
	tb.Helper()
	d, vncURL := connect(tb, user, pool)
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	si, err := viewConsole(ctx, base, vncURL)
	if err != nil {
		tb.Fatalf("console of desktop %s on host %s: %v", d.Name, d.HostID, err)
	}
	tb.Logf("console of %s on host %s: %dx%d, framebuffer update received", d.Name, d.HostID, si.Width, si.Height)
	return d
}
