package local

import (
	"crypto/rand"
	"encoding/binary"
)

// familyWild is the Xauthority address family that matches any address.
const familyWild = 0xffff

// xauthority returns an Xauthority file with one MIT-MAGIC-COOKIE-1 entry
// for any address and any display (an empty display number matches all),
// so the file stays valid when the desktop gets another display. Xvnc
// reads it with -auth; the session finds it through XAUTHORITY. Without
// it, any local user could connect to the desktop's X display.
func xauthority() []byte {
	cookie := make([]byte, 16)
	_, _ = rand.Read(cookie)
	var b []byte
	b = binary.BigEndian.AppendUint16(b, familyWild)
	for _, field := range [][]byte{nil, nil, []byte("MIT-MAGIC-COOKIE-1"), cookie} {
		b = binary.BigEndian.AppendUint16(b, uint16(len(field)))
		b = append(b, field...)
	}
	return b
}
