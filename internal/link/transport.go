// Package link carries links between Lobby processes: a WebSocket on the
// node's normal listener, mutual TLS inside it with certificates from the
// cluster CA, and yamux streams inside that. The node's side is Hub; the
// agent's side is in package agent, built on Dial and ClientTLS here.
package link

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"path"
	"strings"
	"time"

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

// muxConfig is yamux's configuration for links. Its keepalive is off on
// both sides: heartbeats and pings on the WebSocket under the TLS stand in (see Heartbeat), which
// costs a fraction of a yamux ping (no TLS record, no multiplexer
// goroutines, no timers per ping).
func muxConfig() *yamux.Config {
	c := yamux.DefaultConfig()
	c.EnableKeepAlive = false
	c.ConnectionWriteTimeout = 10 * time.Second
	c.StreamOpenTimeout = 15 * time.Second
	c.StreamCloseTimeout = time.Minute
	// A console stream keeps a few frames in flight: with a window of one
	// frame the sender waits for every window update, which crosses the
	// TLS and the WebSocket back.
	c.MaxStreamWindowSize = 16 << 20
	c.LogOutput = io.Discard
	return c
}

// Client starts the leaf's side of yamux over the inner TLS. A silent hub
// is found by Heartbeat.
func Client(conn net.Conn) (*yamux.Session, error) {
	return yamux.Client(batched(conn), muxConfig())
}

// server starts the hub's side.
func server(conn net.Conn, ping time.Duration) (*yamux.Session, error) {
	c := muxConfig()
	c.ConnectionWriteTimeout = max(3*ping, 5*time.Second)
	return yamux.Server(batched(conn), c)
}

// batched gives yamux a connection that sends each of its messages in one
// write(2) when the inner TLS runs over a link's WebSocket: yamux writes
// a data frame's 12-byte header and its body in two calls, which TLS
// seals into a record for the header and one per 16 KiB of body, each a
// WebSocket frame. Unsent frames are held in the WebSocket (cork), so
// the ordering of everything written on the link is unchanged.
func batched(conn net.Conn) net.Conn {
	tc, ok := conn.(*tls.Conn)
	if !ok {
		return conn
	}
	ws, ok := tc.NetConn().(*WS)
	if !ok {
		return conn
	}
	return &corkedConn{Conn: conn, ws: ws}
}

type corkedConn struct {
	net.Conn
	ws      *WS
	pending bool // a data header was written: its body comes next
}

// Write is called by yamux's one sending goroutine only.
func (c *corkedConn) Write(p []byte) (int, error) {
	body := c.pending // what follows a data header is its body, whatever it looks like
	if !body {
		c.ws.cork()
	}
	n, err := c.Conn.Write(p)
	// yamux's header: version, type, flags (2), stream (4), length (4).
	// A data header with a length is followed at once by its body.
	if err == nil && !body && len(p) == 12 && p[0] == 0 && p[1] == 0 && binary.BigEndian.Uint32(p[8:]) > 0 {
		c.pending = true
		return n, nil
	}
	c.pending = false
	if ferr := c.ws.uncork(); err == nil {
		err = ferr
	}
	return n, err
}
