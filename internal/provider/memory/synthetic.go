package memory

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"

	"lobby/internal/rfb"
)

// MaxSize is the largest synthetic framebuffer side.
const MaxSize = 8192

// maxCachedFormats bounds the frames a Source keeps, one per pixel format
// its clients asked for; further formats are built per connection.
const maxCachedFormats = 8

// Source is a synthetic RFB framebuffer. After ClientInit it sends a
// ServerInit and then answers each FramebufferUpdateRequest, incremental or
// not, with one full-screen Raw rectangle. Each frame is built once per
// pixel format and shared by all connections, so serving costs one write
// per request. It is safe for concurrent use.
type Source struct {
	// Width and Height of the framebuffer; default 1280x800.
	Width, Height uint16
	// Name is the desktop name in ServerInit; default "lobby synthetic".
	Name string

	mu     sync.Mutex
	frames map[rfb.PixelFormat][]byte
}

// ServeSynthetic serves a default Source (1280x800, 32 bits per pixel) on
// conn, which must be positioned after SecurityResult: it reads ClientInit
// first. It returns nil when the client closes the connection, and an
// error for a message it cannot parse.
func ServeSynthetic(conn net.Conn) error { return new(Source).Serve(conn) }

// Serve serves the source on conn, positioned after SecurityResult (see
// ServeSynthetic).
func (s *Source) Serve(conn net.Conn) error { return s.serve(conn, s.Name) }

// serve serves the source under the desktop name given.
func (s *Source) serve(conn net.Conn, name string) error {
	w, h := s.size()
	if name == "" {
		name = "lobby synthetic"
	}
	br := bufio.NewReader(conn)
	if _, err := br.ReadByte(); err != nil { // ClientInit: shared flag
		return eofNil(fmt.Errorf("synthetic: read ClientInit: %w", err))
	}
	pf := rfb.DefaultPixelFormat
	si, _ := rfb.ServerInit{Width: w, Height: h, PixelFormat: pf, Name: name}.AppendBinary(nil)
	if _, err := conn.Write(si); err != nil {
		return fmt.Errorf("synthetic: write ServerInit: %w", err)
	}
	frame := s.frame(pf)
	var msg [19]byte
	for {
		typ, err := br.ReadByte()
		if err != nil {
			return eofNil(err)
		}
		switch typ {
		case rfb.MsgFramebufferUpdateRequest:
			if _, err = io.ReadFull(br, msg[:9]); err == nil {
				_, err = conn.Write(frame)
			}
		case rfb.MsgSetPixelFormat:
			if _, err = io.ReadFull(br, msg[:19]); err == nil {
				if pf, err = rfb.ParsePixelFormat(msg[3:19]); err == nil {
					frame = s.frame(pf)
				}
			}
		case rfb.MsgSetEncodings:
			if _, err = io.ReadFull(br, msg[:3]); err == nil {
				_, err = br.Discard(4 * int(binary.BigEndian.Uint16(msg[1:3])))
			}
		case rfb.MsgKeyEvent:
			_, err = br.Discard(7)
		case rfb.MsgPointerEvent:
			_, err = br.Discard(5)
		case rfb.MsgClientCutText:
			if _, err = io.ReadFull(br, msg[:7]); err == nil {
				// A negative length is the extended clipboard format.
				n := int64(int32(binary.BigEndian.Uint32(msg[3:7])))
				_, err = io.CopyN(io.Discard, br, max(n, -n))
			}
		default:
			return fmt.Errorf("synthetic: unsupported client message type %d", typ)
		}
		if err != nil {
			return eofNil(err)
		}
	}
}

// eofNil turns the client going away into a clean end.
func eofNil(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrClosedPipe) || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

func (s *Source) size() (w, h uint16) {
	w, h = s.Width, s.Height
	if w == 0 || h == 0 {
		w, h = 1280, 800
	}
	return min(w, MaxSize), min(h, MaxSize)
}

// frame returns the FramebufferUpdate message for pf, built once.
func (s *Source) frame(pf rfb.PixelFormat) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f, ok := s.frames[pf]; ok {
		return f
	}
	w, h := s.size()
	f := buildFrame(w, h, pf)
	if s.frames == nil {
		s.frames = map[rfb.PixelFormat][]byte{}
	}
	if len(s.frames) < maxCachedFormats {
		s.frames[pf] = f
	}
	return f
}

// buildFrame encodes a FramebufferUpdate with one full-screen Raw
// rectangle showing a colour gradient.
func buildFrame(w, h uint16, pf rfb.PixelFormat) []byte {
	bpp := pf.BytesPerPixel()
	b := make([]byte, 0, 4+12+int(w)*int(h)*bpp)
	b = append(b, rfb.MsgFramebufferUpdate, 0, 0, 1)
	b, _ = rfb.Rect{Width: w, Height: h, Encoding: rfb.EncodingRaw}.AppendBinary(b)
	var px [4]byte
	for y := range int(h) {
		for x := range int(w) {
			r, g, bl := uint32(x*255/int(w)), uint32(y*255/int(h)), uint32(128)
			v := r*uint32(pf.RedMax)/255<<pf.RedShift |
				g*uint32(pf.GreenMax)/255<<pf.GreenShift |
				bl*uint32(pf.BlueMax)/255<<pf.BlueShift
			switch {
			case bpp == 1:
				px[0] = byte(v)
			case pf.BigEndian && bpp == 2:
				binary.BigEndian.PutUint16(px[:], uint16(v))
			case bpp == 2:
				binary.LittleEndian.PutUint16(px[:], uint16(v))
			case pf.BigEndian:
				binary.BigEndian.PutUint32(px[:], v)
			default:
				binary.LittleEndian.PutUint32(px[:], v)
			}
			b = append(b, px[:bpp]...)
		}
	}
	return b
}
