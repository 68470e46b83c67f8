package rfb

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
)

// ServeNone performs the server side of the handshake towards a viewer,
// offering only security type None: it sends version 3.8, accepts a client
// answering 3.3, 3.7 or 3.8 (see ParseVersion), and completes security as
// that version requires (RFC 6143 §7.1-7.2; 3.8 sends SecurityResult for
// None, 3.3 and 3.7 do not). When it returns nil, the next bytes read from
// conn are the client's ClientInit. A client that sends garbage or picks
// another security type gets an error (in 3.8, the client is told why
// first). The handshake is bounded by HandshakeTimeout.
func ServeNone(conn net.Conn) error {
	defer handshakeDeadline(conn)()
	if _, err := conn.Write(V38.versionMsg()); err != nil {
		return fmt.Errorf("rfb: write version: %w", err)
	}
	var msg [12]byte
	if _, err := io.ReadFull(conn, msg[:]); err != nil {
		return fmt.Errorf("rfb: read client version: %w", err)
	}
	v, err := ParseVersion(msg[:])
	if err != nil {
		return fmt.Errorf("rfb: client: %w", err)
	}
	if v == V33 {
		// In 3.3 the server decides; None needs no SecurityResult.
		if _, err := conn.Write(binary.BigEndian.AppendUint32(nil, SecNone)); err != nil {
			return fmt.Errorf("rfb: write security type: %w", err)
		}
		return nil
	}
	if _, err := conn.Write([]byte{1, SecNone}); err != nil {
		return fmt.Errorf("rfb: write security types: %w", err)
	}
	var choice [1]byte
	if _, err := io.ReadFull(conn, choice[:]); err != nil {
		return fmt.Errorf("rfb: read security type: %w", err)
	}
	if choice[0] != SecNone {
		reply := binary.BigEndian.AppendUint32(nil, resultFailed)
		if v == V38 {
			reply = appendReason(reply, fmt.Sprintf("security type %d is not offered: use None (1)", choice[0]))
		}
		_, _ = conn.Write(reply)
		return fmt.Errorf("rfb: client chose security type %d, but only None (1) is offered", choice[0])
	}
	if v == V38 {
		if _, err := conn.Write(binary.BigEndian.AppendUint32(nil, resultOK)); err != nil {
			return fmt.Errorf("rfb: write security result: %w", err)
		}
	}
	return nil
}
