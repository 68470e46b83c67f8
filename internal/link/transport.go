// Package link carries links between Lobby processes: a WebSocket on the
// node's normal listener, mutual TLS inside it with certificates from the
// cluster CA, and yamux streams inside that. The node's side is Hub; the
// agent's side is in package agent, built on Dial and ClientTLS here.
package link

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/hashicorp/yamux"

	"lobby/internal/linkproto"
	"lobby/internal/pki"
)

// HandshakeTimeout bounds the WebSocket upgrade, the TLS handshake and the
// Hello/Welcome exchange.
const HandshakeTimeout = 15 * time.Second

// LinkURL turns a node's listen URL (https://node:8443) into its link
// WebSocket URL (wss://node:8443/link).
func LinkURL(hub string) (string, error) {
	u, err := url.Parse(hub)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("hub %q is not a URL like https://node:8443", hub)
	}
	switch u.Scheme {
	case "https", "wss":
		u.Scheme = "wss"
	case "http", "ws":
		u.Scheme = "ws"
	default:
		return "", fmt.Errorf("hub %q: use an https:// (or http:// for lobby dev) URL", hub)
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + linkproto.Path
	return u.String(), nil
}

// Dial opens the outer transport to a hub: a WebSocket whose bytes the
// caller wraps in mutual TLS. The outer HTTPS certificate is not checked:
// it may belong to a TLS-terminating balancer, and the hub is
// authenticated by the inner TLS against the pinned cluster CA. With
// secureOnly, a plain-HTTP hub URL is refused.
func Dial(ctx context.Context, hub string, secureOnly bool) (net.Conn, error) {
	wsURL, err := LinkURL(hub)
	if err != nil {
		return nil, err
	}
	if secureOnly && strings.HasPrefix(wsURL, "ws:") {
		return nil, fmt.Errorf("hub %s is plain HTTP and this link is secure-only: use its https:// URL", hub)
	}
	tr := &http.Transport{
		Proxy:             http.ProxyFromEnvironment,
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}}, //nolint:gosec // see above
		ForceAttemptHTTP2: false,
	}
	defer tr.CloseIdleConnections()
	ws, resp, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{
		HTTPClient:   &http.Client{Transport: tr},
		Subprotocols: []string{linkproto.Subprotocol},
	})
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			return nil, fmt.Errorf("hub %s answered %s instead of a link: is it a Lobby node of a release that has links?", hub, resp.Status)
		}
		return nil, fmt.Errorf("reach hub %s: %w", hub, err)
	}
	return netConn(ws), nil
}

// Accept upgrades a request to a link's outer transport.
func Accept(w http.ResponseWriter, r *http.Request) (net.Conn, error) {
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		Subprotocols: []string{linkproto.Subprotocol},
		// Agents are not browsers: no Origin to check, and the inner
		// mutual TLS authenticates them.
		InsecureSkipVerify: true,
	})
	if err != nil {
		return nil, err
	}
	if ws.Subprotocol() != linkproto.Subprotocol {
		ws.Close(websocket.StatusPolicyViolation, "not a Lobby link: subprotocol "+linkproto.Subprotocol+" required")
		return nil, errors.New("peer did not ask for the link subprotocol")
	}
	return netConn(ws), nil
}

// netConn adapts a WebSocket to a byte stream that lives until closed.
func netConn(ws *websocket.Conn) net.Conn {
	ctx, cancel := context.WithCancel(context.Background())
	return &closeCancel{Conn: websocket.NetConn(ctx, ws, websocket.MessageBinary), cancel: cancel}
}

type closeCancel struct {
	net.Conn
	cancel context.CancelFunc
}

func (c *closeCancel) Close() error {
	err := c.Conn.Close()
	c.cancel()
	return err
}

// ServerTLS is a hub's side of the inner TLS: it presents the node's
// certificate and asks for the peer's, which the hub verifies itself (so
// that a refusal can say why, inside the link, instead of a bare alert).
func ServerTLS(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequestClientCert,
		MinVersion:   tls.VersionTLS13,
	}
}

// ClientTLS is a leaf's side of the inner TLS. It accepts the hub only if
// its chain leads to the pinned CA (given as a certificate, or only as
// the fingerprint a join token carries) and its name matches mask.
func ClientTLS(ca *x509.Certificate, caFingerprint [32]byte, cert *tls.Certificate, hub, mask string) *tls.Config {
	c := &tls.Config{
		MinVersion:         tls.VersionTLS13,
		InsecureSkipVerify: true, //nolint:gosec // verified below against the pinned CA, not the system roots
		ServerName:         "lobby-link",
		VerifyConnection: func(cs tls.ConnectionState) error {
			return verifyHub(cs.PeerCertificates, ca, caFingerprint, hub, mask)
		},
	}
	if cert != nil {
		c.Certificates = []tls.Certificate{*cert}
	}
	return c
}

// Hub refusals seen by a leaf.
var (
	ErrHubCA       = errors.New("the hub's certificate authority is not the one this host trusts")
	ErrHubNameMask = errors.New("the hub's name does not match the link's name mask")
)

func verifyHub(chain []*x509.Certificate, ca *x509.Certificate, fp [32]byte, hub, mask string) error {
	if len(chain) == 0 {
		return fmt.Errorf("hub %s presented no certificate", hub)
	}
	if ca == nil { // joining: find the CA in the hub's chain by fingerprint
		for _, c := range chain[1:] {
			if pki.MatchFingerprint(c, fp) {
				ca = c
			}
		}
		if ca == nil {
			return fmt.Errorf("%w: hub %s's CA does not have the fingerprint in the join token (%s); the token belongs to another cluster, or something is in between", ErrHubCA, hub, pki.FingerprintHex(fp))
		}
	}
	id, err := pki.Verify(ca, chain, time.Now())
	if errors.Is(err, pki.ErrUnknownCA) {
		return fmt.Errorf("%w: hub %s's certificate was not issued by the CA this host joined (another cluster, or something in between)", ErrHubCA, hub)
	}
	if err != nil {
		return fmt.Errorf("%w: hub %s: %v", ErrHubCA, hub, err)
	}
	if id.Kind != pki.KindNode {
		return fmt.Errorf("%w: hub %s presented a %s certificate, not a node's", ErrHubCA, hub, id.Kind)
	}
	if !MatchMask(mask, id.Name) {
		return fmt.Errorf("%w: hub %s is named %q, which does not match %q", ErrHubNameMask, hub, id.Name, mask)
	}
	return nil
}

// MatchMask reports whether name matches a mask of '*' and '?' wildcards
// (case-insensitive, as host names are); an empty mask matches any name.
func MatchMask(mask, name string) bool {
	if mask == "" {
		return true
	}
	ok, err := path.Match(strings.ToLower(mask), strings.ToLower(name))
	return err == nil && ok
}

// ValidMask checks a name mask's syntax.
func ValidMask(mask string) error {
	if _, err := path.Match(mask, ""); err != nil {
		return fmt.Errorf("name mask %q is malformed: use * and ? wildcards, e.g. hub1.*.example.com", mask)
	}
	return nil
}

// muxConfig is yamux's configuration for links. Keepalive is off: the
// hub pings at the leaf's interval and measures round trips; the leaf's
// agent watches for silence itself.
func muxConfig() *yamux.Config {
	c := yamux.DefaultConfig()
	c.EnableKeepAlive = false
	c.ConnectionWriteTimeout = 10 * time.Second
	c.StreamOpenTimeout = 15 * time.Second
	c.StreamCloseTimeout = time.Minute
	c.MaxStreamWindowSize = 1 << 20 // a console stream keeps up with a full-screen update
	c.LogOutput = io.Discard
	return c
}

// Client starts the leaf's side of yamux over the inner TLS.
func Client(conn net.Conn, keepAlive time.Duration) (*yamux.Session, error) {
	c := muxConfig()
	if keepAlive > 0 {
		c.EnableKeepAlive, c.KeepAliveInterval = true, keepAlive
		c.ConnectionWriteTimeout = max(3*keepAlive, 5*time.Second)
	}
	return yamux.Client(conn, c)
}

// server starts the hub's side.
func server(conn net.Conn, ping time.Duration) (*yamux.Session, error) {
	c := muxConfig()
	c.ConnectionWriteTimeout = max(3*ping, 5*time.Second)
	return yamux.Server(conn, c)
}
