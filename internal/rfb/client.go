package rfb

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"slices"
)

// ClientAuth performs the client side of the handshake against a VNC
// server that offers VNC authentication (security type 2), answering with
// the highest version both speak (3.8 for any current server). It returns
// nil when the server accepted the password; the stream is then positioned
// after SecurityResult and the next bytes the caller writes are ClientInit.
//
// A rejected password returns an error wrapping ErrAuthFailed with the
// server's reason; a server that refuses the connection (no security types)
// or does not offer VNC authentication returns a plain error saying so.
// The handshake is bounded by HandshakeTimeout.
func ClientAuth(conn net.Conn, password string) error {
	defer handshakeDeadline(conn)()
	var msg [12]byte
	if _, err := io.ReadFull(conn, msg[:]); err != nil {
		return fmt.Errorf("rfb: read server version: %w", err)
	}
	v, err := ParseVersion(msg[:])
	if err != nil {
		return fmt.Errorf("rfb: server: %w", err)
	}
	if _, err := conn.Write(v.versionMsg()); err != nil {
		return fmt.Errorf("rfb: write version: %w", err)
	}
	if err := chooseVncAuth(conn, v); err != nil {
		return err
	}
	var challenge [16]byte
	if _, err := io.ReadFull(conn, challenge[:]); err != nil {
		return fmt.Errorf("rfb: read challenge: %w", err)
	}
	if _, err := conn.Write(vncAuthResponse(challenge, password)); err != nil {
		return fmt.Errorf("rfb: write challenge response: %w", err)
	}
	return readSecurityResult(conn, v)
}

// chooseVncAuth reads the server's security types and selects VncAuth.
func chooseVncAuth(conn net.Conn, v Version) error {
	if v == V33 {
		var typ uint32
		if err := binary.Read(conn, binary.BigEndian, &typ); err != nil {
			return fmt.Errorf("rfb: read security type: %w", err)
		}
		switch typ {
		case SecVncAuth:
			return nil
		case SecInvalid:
			return refused(conn)
		}
		return fmt.Errorf("rfb: server requires security type %d, not VNC authentication (2)", typ)
	}
	var n [1]byte
	if _, err := io.ReadFull(conn, n[:]); err != nil {
		return fmt.Errorf("rfb: read security types: %w", err)
	}
	if n[0] == 0 {
		return refused(conn)
	}
	types := make([]byte, n[0])
	if _, err := io.ReadFull(conn, types); err != nil {
		return fmt.Errorf("rfb: read security types: %w", err)
	}
	if !slices.Contains(types, SecVncAuth) {
		return fmt.Errorf("rfb: server does not offer VNC authentication (2); it offers security types %v", types)
	}
	if _, err := conn.Write([]byte{SecVncAuth}); err != nil {
		return fmt.Errorf("rfb: write security type: %w", err)
	}
	return nil
}

// refused reads the reason that follows a zero security type count.
func refused(conn net.Conn) error {
	reason, err := readReason(conn)
	if err != nil {
		return fmt.Errorf("rfb: server refused the connection: %w", err)
	}
	return fmt.Errorf("rfb: server refused the connection: %s", reason)
}

// readSecurityResult reads SecurityResult and, on failure in 3.8, the
// reason.
func readSecurityResult(conn net.Conn, v Version) error {
	var res uint32
	if err := binary.Read(conn, binary.BigEndian, &res); err != nil {
		return fmt.Errorf("rfb: read security result: %w", err)
	}
	switch res {
	case resultOK:
		return nil
	case resultTooMany:
		return fmt.Errorf("%w: too many attempts", ErrAuthFailed)
	}
	if v < V38 {
		return fmt.Errorf("%w (security result %d)", ErrAuthFailed, res)
	}
	reason, err := readReason(conn)
	if err != nil {
		return fmt.Errorf("%w (reason unreadable: %v)", ErrAuthFailed, err)
	}
	return fmt.Errorf("%w: %s", ErrAuthFailed, reason)
}
