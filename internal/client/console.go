package client

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/coder/websocket"
)

// ConsoleSubprotocol is the WebSocket subprotocol of the console gateway:
// binary frames carrying a raw RFB stream.
const ConsoleSubprotocol = "binary"

// DialConsole opens the console WebSocket at vncURL (a ConnectResult's
// VNCURL, relative to the server or absolute) and returns it as a net.Conn
// carrying the raw RFB stream: the gateway plays an RFB server with
// security type None. ctx bounds both the handshake and the connection's
// life: cancelling it closes the connection. A refused upgrade comes back
// as a *lobby.Error when the gateway said why (e.g. KindNotFound for a used
// or expired ticket).
func (c *Client) DialConsole(ctx context.Context, vncURL string) (net.Conn, error) {
	target, err := c.resolve(vncURL)
	if err != nil {
		return nil, err
	}
	ws, resp, err := websocket.Dial(ctx, target, &websocket.DialOptions{
		HTTPClient:   c.hc,
		Subprotocols: []string{ConsoleSubprotocol},
	})
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			return nil, c.apiError(resp)
		}
		if resp == nil {
			return nil, c.transportError(ctx, err)
		}
		return nil, fmt.Errorf("open console at %s: %w", c.base, err)
	}
	return websocket.NetConn(ctx, ws, websocket.MessageBinary), nil
}

// resolve makes a gateway URL absolute against the server's base URL (so a
// path prefix of the base is kept).
func (c *Client) resolve(ref string) (string, error) {
	if strings.HasPrefix(ref, "/") && !strings.HasPrefix(ref, "//") {
		return c.base + ref, nil
	}
	u, err := url.Parse(ref)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("console URL %q is neither a path nor an absolute URL", ref)
	}
	switch u.Scheme {
	case "ws", "wss", "http", "https":
		return ref, nil
	}
	return "", fmt.Errorf("console URL %q has scheme %q: want ws, wss, http or https", ref, u.Scheme)
}
