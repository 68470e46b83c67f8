package rfb

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// HandshakeTimeout bounds each handshake; the deadline is cleared when the
// handshake returns.
const HandshakeTimeout = 10 * time.Second

// Security types (RFC 6143 §7.2).
const (
	SecInvalid = 0
	SecNone    = 1
	SecVncAuth = 2
)

// SecurityResult values.
const (
	resultOK     = 0
	resultFailed = 1
	// resultTooMany is what old servers send after repeated failures.
	resultTooMany = 2
)

// maxReason caps a reason string read from the peer, so a hostile peer
// cannot make us allocate gigabytes.
const maxReason = 64 << 10

// ErrAuthFailed is returned (wrapped, with the server's reason) when the
// server rejects the password.
var ErrAuthFailed = errors.New("rfb: authentication failed")

// Version is a negotiated protocol version: 3.3, 3.7 or 3.8.
type Version int

// Protocol versions, as minor numbers of major version 3.
const (
	V33 Version = 3
	V37 Version = 7
	V38 Version = 8
)

func (v Version) String() string { return fmt.Sprintf("3.%d", int(v)) }

// versionMsg is the 12-byte ProtocolVersion message for v.
func (v Version) versionMsg() []byte { return fmt.Appendf(nil, "RFB 003.%03d\n", int(v)) }

// ParseVersion parses a 12-byte ProtocolVersion message ("RFB xxx.yyy\n")
// and maps it to the version both sides speak. Major version must be 3;
// minor 8 and Apple's 889 are 3.8, 7 is 3.7, and 3 to 6 are 3.3 (RFC 6143
// §7.1.1: other minor numbers do not implement the 3.7 handshake). Anything
// else is an error that quotes the input.
func ParseVersion(msg []byte) (Version, error) {
	if len(msg) != 12 || string(msg[:4]) != "RFB " || msg[7] != '.' || msg[11] != '\n' {
		return 0, fmt.Errorf("rfb: not an RFB protocol version: %q", msg)
	}
	major, ok1 := digits3(msg[4:7])
	minor, ok2 := digits3(msg[8:11])
	if !ok1 || !ok2 {
		return 0, fmt.Errorf("rfb: not an RFB protocol version: %q", msg)
	}
	if major != 3 {
		return 0, fmt.Errorf("rfb: unsupported protocol version %d.%d: only 3.x is supported", major, minor)
	}
	switch {
	case minor == 8 || minor == 889:
		return V38, nil
	case minor == 7:
		return V37, nil
	case minor >= 3 && minor <= 6:
		return V33, nil
	}
	return 0, fmt.Errorf("rfb: unsupported protocol version 3.%d: use 3.3, 3.7 or 3.8", minor)
}

func digits3(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// handshakeDeadline sets the handshake deadline on conn and returns the
// function that clears it.
func handshakeDeadline(conn net.Conn) func() {
	_ = conn.SetDeadline(time.Now().Add(HandshakeTimeout))
	return func() { _ = conn.SetDeadline(time.Time{}) }
}

// readReason reads a u32-length-prefixed reason string.
func readReason(r io.Reader) (string, error) {
	var n uint32
	if err := binary.Read(r, binary.BigEndian, &n); err != nil {
		return "", fmt.Errorf("read reason length: %w", err)
	}
	if n > maxReason {
		return "", fmt.Errorf("reason of %d bytes is too long", n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", fmt.Errorf("read reason: %w", err)
	}
	return string(b), nil
}

// appendReason appends a u32-length-prefixed string.
func appendReason(b []byte, reason string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(reason)))
	return append(b, reason...)
}
