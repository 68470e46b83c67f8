// Package linkproto is the wire protocol of links between Lobby processes
// (agent ⇄ node and node ⇄ node): every message, the framing, the join
// token format and the protocol version, in one place so that a change is
// a visible version bump.
//
// A link is a WebSocket on the node's normal listener at Path, carrying
// mutual TLS end to end (the node's and the host's certificates from the
// cluster CA), carrying the frames below:
//
//  1. the dialing side sends Hello; the hub answers Welcome (with Error
//     set when it refuses, and the link ends);
//  2. for a join, that is all: Welcome carries the host's certificate;
//  3. otherwise both sides run yamux (the dialing side as client). Every
//     stream starts with an Open frame naming what it is for.
//
// A node link (Hello kind KindNode, since version 2) joins two nodes, so
// that either reaches the hosts linked to the other: a StreamHost stream
// names the host and, once the peer answers that it has the host, carries
// what a stream from a hub to that host's agent carries.
package linkproto

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Version is the protocol this release speaks; MinVersion the oldest it
// still accepts. Bump Version for any change to the messages below.
//
// Version 2 added node links (KindNode, StreamHost, StreamCut); version 3
// certificate renewal (StreamRenew). Leaves of version 1 are still served.
const (
	Version    = 3
	MinVersion = 1
	// MinNodeVersion is the oldest version a node link may speak.
	MinNodeVersion = 2
)

// Path is where a node accepts links; Subprotocol the WebSocket
// subprotocol a link asks for.
const (
	Path        = "/link"
	Subprotocol = "lobby-link"
)

// MaxFrame bounds one frame: a report of a host with thousands of
// desktops fits with room to spare.
const MaxFrame = 16 << 20

// WriteFrame writes v as one frame: a 4-byte big-endian length and JSON.
func WriteFrame(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if len(b) > MaxFrame {
		return fmt.Errorf("link frame of %d bytes exceeds %d", len(b), MaxFrame)
	}
	buf := make([]byte, 4+len(b))
	binary.BigEndian.PutUint32(buf, uint32(len(b)))
	copy(buf[4:], b)
	_, err = w.Write(buf)
	return err
}

// ReadFrame reads one frame into v. It reads exactly the frame, so the
// bytes after it (a console stream) are left in r.
func ReadFrame(r io.Reader, v any) error {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > MaxFrame {
		return fmt.Errorf("link frame of %d bytes exceeds %d", n, MaxFrame)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// Hello kinds.
const (
	KindJoin = "join" // redeem a join token for a host certificate
	KindLeaf = "leaf" // an agent linking with its certificate
	KindNode = "node" // a node linking to another node with its certificate
)

// Hello is the leaf's first frame.
type Hello struct {
	Proto    int    `json:"proto"`
	Kind     string `json:"kind"`
	Name     string `json:"name"`    // the host's (or node's) name
	Release  string `json:"release"` // the agent's release, e.g. 0.2.0
	Provider string `json:"provider,omitempty"`
	// Join: the token's ID and secret, and a certificate request (DER).
	TokenID     string `json:"token_id,omitempty"`
	TokenSecret string `json:"token_secret,omitempty"`
	CSR         []byte `json:"csr,omitempty"`
	// Leaf: its link settings, for the node to show.
	Ping      Duration     `json:"ping,omitempty"`
	Upstreams []HubSetting `json:"upstreams,omitempty"`
	// Node: the dialing node's site ID, which its certificate names.
	SiteID int `json:"site_id,omitempty"`
}

// HubSetting is one entry of a leaf's ordered list of upstream hubs.
type HubSetting struct {
	URL         string   `json:"url"`                 // the node's listen URL: https://node:8443
	NameMask    string   `json:"name_mask,omitempty"` // hub names accepted, e.g. hub1.*.example.com; empty: any
	Ping        Duration `json:"ping,omitempty"`
	AutoConnect bool     `json:"auto_connect"`
	SecureOnly  bool     `json:"secure_only"` // refuse a plain-HTTP outer transport
}

// String writes the setting as lobby agent --hub takes it:
// URL[,mask=PATTERN][,ping=D][,auto=off][,secure-only].
func (h HubSetting) String() string {
	s := h.URL
	if h.NameMask != "" {
		s += ",mask=" + h.NameMask
	}
	if h.Ping > 0 {
		s += ",ping=" + time.Duration(h.Ping).String()
	}
	if !h.AutoConnect {
		s += ",auto=off"
	}
	if h.SecureOnly {
		s += ",secure-only"
	}
	return s
}

// Welcome is the hub's answer to Hello.
type Welcome struct {
	Proto  int    `json:"proto"`
	Hub    string `json:"hub,omitempty"`     // the node's name
	SiteID int    `json:"site_id,omitempty"` // the node's site ID
	HostID string `json:"host_id,omitempty"`
	// Ping is the interval the hub pings at (the leaf's, within the hub's
	// bounds); the leaf ends a link silent for three of them.
	Ping  Duration `json:"ping,omitempty"`
	Error *Error   `json:"error,omitempty"`
	// Node: the accepting node's release.
	Release string `json:"release,omitempty"`
	// Join: the host's certificate (DER), issued by the CA.
	Cert []byte `json:"cert,omitempty"`
}

// Error is a refusal or a failed operation. Code is a lobby.Kind name
// (not_found, invalid, ...) or one of the refusal codes.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Message }

// Refusal codes.
const (
	CodeIncompatible = "incompatible_protocol"
	CodeBadToken     = "bad_token"
	CodeExpiredToken = "expired_token"
	CodeBadCert      = "bad_certificate"
	CodeRevoked      = "revoked"
	CodeNameTaken    = "name_taken"
	CodeInternal     = "internal"
)

// Stream types.
const (
	StreamCommand = "command" // hub → leaf: Open{Command}, then Result
	StreamConsole = "console" // hub → leaf: Open{Desktop}, Result, then raw console bytes
	StreamList    = "list"    // hub → leaf: Open, then Report
	StreamReport  = "report"  // leaf → hub: a Report frame whenever something changed
	StreamRenew   = "renew"   // leaf → hub: Open{CSR}, then Result{Cert}: the host's certificate renewed
	// Node links, either way.
	StreamHost = "host" // Open{Host}, Result (the peer has the host, or why not), then as a hub → leaf stream
	StreamCut  = "cut"  // Open{Host, Reason}, Result: end the host's link, if the peer has it (revoked, removed)
)

// Open starts a stream.
type Open struct {
	Type    string   `json:"type"`
	Command *Command `json:"command,omitempty"`
	Desktop string   `json:"desktop,omitempty"`
	Host    string   `json:"host,omitempty"`   // StreamHost, StreamCut: the host's ID
	Reason  string   `json:"reason,omitempty"` // StreamCut
	CSR     []byte   `json:"csr,omitempty"`    // StreamRenew
}

// Command is one provider operation. ID identifies it across retries:
// an agent that has run (ID, Op) answers from memory instead of running
// it twice.
type Command struct {
	ID       string `json:"id"`
	Op       string `json:"op"`
	Desktop  string `json:"desktop"`
	Template string `json:"template,omitempty"`
}

// Result answers a command or a console request.
type Result struct {
	Desktop *Desktop `json:"desktop,omitempty"`
	Error   *Error   `json:"error,omitempty"`
	Cert    []byte   `json:"cert,omitempty"` // StreamRenew: the new certificate (DER)
}

// Desktop is what an agent reports of one desktop.
type Desktop struct {
	Name        string `json:"name"`
	Power       string `json:"power"`
	ConsoleKind string `json:"console_kind,omitempty"`
	ConsolePort int    `json:"console_port,omitempty"`
	Template    string `json:"template,omitempty"`
}

// Report is the whole state of a host: every desktop and its metrics.
type Report struct {
	Desktops   []Desktop `json:"desktops"`
	CPUPercent float64   `json:"cpu_percent"`
	MemTotal   int64     `json:"mem_total"`
	MemUsed    int64     `json:"mem_used"`
}

// Duration is a time.Duration written as a Go duration string ("1s").
type Duration time.Duration

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// JoinToken is what `lobby admin token create` prints: the token's ID, its
// secret and the fingerprint of the CA the agent must find on its hub.
type JoinToken struct {
	ID            string
	Secret        string
	CAFingerprint [32]byte
}

// tokenPrefix names the format; a new format gets a new prefix.
const tokenPrefix = "LJ1"

// String encodes the token as LJ1.<id>.<secret>.<fingerprint>.
func (t JoinToken) String() string {
	return tokenPrefix + "." + t.ID + "." + t.Secret + "." + base64.RawURLEncoding.EncodeToString(t.CAFingerprint[:])
}

// ErrMalformedToken is returned for a string that is not a join token.
var ErrMalformedToken = errors.New("the join token is malformed: copy the whole token printed by `lobby admin token create` (it starts with LJ1.)")

// ParseJoinToken decodes a token.
func ParseJoinToken(s string) (JoinToken, error) {
	parts := strings.Split(strings.TrimSpace(s), ".")
	if len(parts) != 4 || parts[0] != tokenPrefix || parts[1] == "" || parts[2] == "" {
		return JoinToken{}, ErrMalformedToken
	}
	fp, err := base64.RawURLEncoding.DecodeString(parts[3])
	if err != nil || len(fp) != 32 {
		return JoinToken{}, ErrMalformedToken
	}
	t := JoinToken{ID: parts[1], Secret: parts[2]}
	copy(t.CAFingerprint[:], fp)
	return t, nil
}
