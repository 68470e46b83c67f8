package rfb

import (
	"encoding/binary"
	"fmt"
	"io"
)

// Message types used by brokers, tests and synthetic sources.
const (
	// Client to server.
	MsgSetPixelFormat           = 0
	MsgSetEncodings             = 2
	MsgFramebufferUpdateRequest = 3
	MsgKeyEvent                 = 4
	MsgPointerEvent             = 5
	MsgClientCutText            = 6
	// Server to client.
	MsgFramebufferUpdate = 0
)

// EncodingRaw is the Raw rectangle encoding every client supports.
const EncodingRaw = 0

// PixelFormat is the 16-byte PIXEL_FORMAT of RFC 6143 §7.4.
type PixelFormat struct {
	BitsPerPixel, Depth             uint8
	BigEndian, TrueColor            bool
	RedMax, GreenMax, BlueMax       uint16
	RedShift, GreenShift, BlueShift uint8
}

// DefaultPixelFormat is 32 bits per pixel, depth 24, little-endian true
// colour with red in bits 16-23: what Xvnc offers at depth 24.
var DefaultPixelFormat = PixelFormat{
	BitsPerPixel: 32, Depth: 24, TrueColor: true,
	RedMax: 255, GreenMax: 255, BlueMax: 255,
	RedShift: 16, GreenShift: 8, BlueShift: 0,
}

// BytesPerPixel is BitsPerPixel / 8.
func (pf PixelFormat) BytesPerPixel() int { return int(pf.BitsPerPixel) / 8 }

// AppendBinary appends the 16-byte wire form of pf.
func (pf PixelFormat) AppendBinary(b []byte) ([]byte, error) {
	b = append(b, pf.BitsPerPixel, pf.Depth, boolByte(pf.BigEndian), boolByte(pf.TrueColor))
	b = binary.BigEndian.AppendUint16(b, pf.RedMax)
	b = binary.BigEndian.AppendUint16(b, pf.GreenMax)
	b = binary.BigEndian.AppendUint16(b, pf.BlueMax)
	return append(b, pf.RedShift, pf.GreenShift, pf.BlueShift, 0, 0, 0), nil
}

// ParsePixelFormat decodes the 16-byte wire form. It rejects bits per
// pixel other than 8, 16 and 32, which RFC 6143 allows alone.
func ParsePixelFormat(b []byte) (PixelFormat, error) {
	if len(b) < 16 {
		return PixelFormat{}, fmt.Errorf("rfb: pixel format is %d bytes, want 16", len(b))
	}
	pf := PixelFormat{
		BitsPerPixel: b[0], Depth: b[1], BigEndian: b[2] != 0, TrueColor: b[3] != 0,
		RedMax:   binary.BigEndian.Uint16(b[4:]),
		GreenMax: binary.BigEndian.Uint16(b[6:]),
		BlueMax:  binary.BigEndian.Uint16(b[8:]),
		RedShift: b[10], GreenShift: b[11], BlueShift: b[12],
	}
	switch pf.BitsPerPixel {
	case 8, 16, 32:
		return pf, nil
	}
	return PixelFormat{}, fmt.Errorf("rfb: %d bits per pixel is not valid: use 8, 16 or 32", pf.BitsPerPixel)
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

// ServerInit is the server's first message after ClientInit.
type ServerInit struct {
	Width, Height uint16
	PixelFormat   PixelFormat
	Name          string
}

// AppendBinary appends the wire form of si.
func (si ServerInit) AppendBinary(b []byte) ([]byte, error) {
	b = binary.BigEndian.AppendUint16(b, si.Width)
	b = binary.BigEndian.AppendUint16(b, si.Height)
	b, _ = si.PixelFormat.AppendBinary(b)
	return appendReason(b, si.Name), nil
}

// ReadServerInit reads a ServerInit message.
func ReadServerInit(r io.Reader) (ServerInit, error) {
	var head [20]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return ServerInit{}, fmt.Errorf("rfb: read ServerInit: %w", err)
	}
	pf, err := ParsePixelFormat(head[4:])
	if err != nil {
		return ServerInit{}, err
	}
	name, err := readReason(r)
	if err != nil {
		return ServerInit{}, fmt.Errorf("rfb: read desktop name: %w", err)
	}
	return ServerInit{
		Width:       binary.BigEndian.Uint16(head[0:]),
		Height:      binary.BigEndian.Uint16(head[2:]),
		PixelFormat: pf,
		Name:        name,
	}, nil
}

// AppendFramebufferUpdateRequest appends a FramebufferUpdateRequest for
// the given rectangle.
func AppendFramebufferUpdateRequest(b []byte, incremental bool, x, y, w, h uint16) []byte {
	b = append(b, MsgFramebufferUpdateRequest, boolByte(incremental))
	for _, v := range [4]uint16{x, y, w, h} {
		b = binary.BigEndian.AppendUint16(b, v)
	}
	return b
}

// Rect is a rectangle header of a FramebufferUpdate.
type Rect struct {
	X, Y, Width, Height uint16
	Encoding            int32
}

// AppendBinary appends the 12-byte wire form of r.
func (r Rect) AppendBinary(b []byte) ([]byte, error) {
	for _, v := range [4]uint16{r.X, r.Y, r.Width, r.Height} {
		b = binary.BigEndian.AppendUint16(b, v)
	}
	return binary.BigEndian.AppendUint32(b, uint32(r.Encoding)), nil
}

// ReadRect reads a 12-byte rectangle header.
func ReadRect(r io.Reader) (Rect, error) {
	var b [12]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return Rect{}, fmt.Errorf("rfb: read rectangle: %w", err)
	}
	return Rect{
		X: binary.BigEndian.Uint16(b[0:]), Y: binary.BigEndian.Uint16(b[2:]),
		Width: binary.BigEndian.Uint16(b[4:]), Height: binary.BigEndian.Uint16(b[6:]),
		Encoding: int32(binary.BigEndian.Uint32(b[8:])),
	}, nil
}
