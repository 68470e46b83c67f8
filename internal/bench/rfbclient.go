package bench

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"time"

	"lobby/internal/rfb"
)

// clientNone is the viewer's side of an RFB 3.8 handshake that selects
// security type None. Afterwards the next bytes written are ClientInit.
func clientNone(rw io.ReadWriter) error {
	var ver [12]byte
	if _, err := io.ReadFull(rw, ver[:]); err != nil {
		return fmt.Errorf("rfb: read version: %w", err)
	}
	if _, err := rfb.ParseVersion(ver[:]); err != nil {
		return fmt.Errorf("rfb: server version %q: %w", ver, err)
	}
	if _, err := rw.Write([]byte("RFB 003.008\n")); err != nil {
		return err
	}
	var n [1]byte
	if _, err := io.ReadFull(rw, n[:]); err != nil {
		return fmt.Errorf("rfb: read security types: %w", err)
	}
	types := make([]byte, n[0])
	if _, err := io.ReadFull(rw, types); err != nil {
		return fmt.Errorf("rfb: read security types: %w", err)
	}
	if !slices.Contains(types, rfb.SecNone) {
		return fmt.Errorf("rfb: the server offers security types %v, not None", types)
	}
	if _, err := rw.Write([]byte{rfb.SecNone}); err != nil {
		return err
	}
	var res [4]byte
	if _, err := io.ReadFull(rw, res[:]); err != nil {
		return fmt.Errorf("rfb: read security result: %w", err)
	}
	if binary.BigEndian.Uint32(res[:]) != 0 {
		return fmt.Errorf("rfb: security None refused")
	}
	return nil
}

// viewer is an RFB client past the handshake that asks only for Raw
// rectangles and counts what it reads.
type viewer struct {
	w    io.Writer
	br   *bufio.Reader
	si   rfb.ServerInit
	read int64 // bytes of FramebufferUpdate messages read
}

// newViewer sends ClientInit (shared) and SetEncodings(Raw) and reads
// ServerInit.
func newViewer(rw io.ReadWriter) (*viewer, error) {
	v := &viewer{w: rw, br: bufio.NewReaderSize(rw, 256<<10)}
	if _, err := rw.Write([]byte{1}); err != nil {
		return nil, err
	}
	si, err := rfb.ReadServerInit(v.br)
	if err != nil {
		return nil, fmt.Errorf("rfb: %w", err)
	}
	v.si = si
	if _, err := rw.Write([]byte{rfb.MsgSetEncodings, 0, 0, 1, 0, 0, 0, rfb.EncodingRaw}); err != nil {
		return nil, err
	}
	return v, nil
}

// request sends a FramebufferUpdateRequest.
func (v *viewer) request(incremental bool, x, y, w, h uint16) error {
	_, err := v.w.Write(rfb.AppendFramebufferUpdateRequest(nil, incremental, x, y, w, h))
	return err
}

// readUpdate reads one FramebufferUpdate of Raw rectangles and discards
// its pixels.
func (v *viewer) readUpdate() error {
	var head [4]byte
	if _, err := io.ReadFull(v.br, head[:]); err != nil {
		return fmt.Errorf("rfb: read update: %w", err)
	}
	if head[0] != rfb.MsgFramebufferUpdate {
		return fmt.Errorf("rfb: message type %d, want FramebufferUpdate", head[0])
	}
	n := int64(4)
	bpp := int64(v.si.PixelFormat.BytesPerPixel())
	for range binary.BigEndian.Uint16(head[2:]) {
		r, err := rfb.ReadRect(v.br)
		if err != nil {
			return fmt.Errorf("rfb: %w", err)
		}
		if r.Encoding != rfb.EncodingRaw {
			return fmt.Errorf("rfb: rectangle encoding %d, want Raw", r.Encoding)
		}
		px := int64(r.Width) * int64(r.Height) * bpp
		if _, err := v.br.Discard(int(px)); err != nil {
			return fmt.Errorf("rfb: read pixels: %w", err)
		}
		n += 12 + px
	}
	v.read += n
	return nil
}

// pump asks for full non-incremental updates, keeping depth requests
// outstanding, until d has passed; it returns the bytes read and the time.
func (v *viewer) pump(d time.Duration, depth int) (int64, time.Duration, error) {
	w, h := v.si.Width, v.si.Height
	for range depth {
		if err := v.request(false, 0, 0, w, h); err != nil {
			return 0, 0, err
		}
	}
	start, before := time.Now(), v.read
	deadline := start.Add(d)
	for time.Now().Before(deadline) {
		if err := v.readUpdate(); err != nil {
			return 0, 0, err
		}
		if err := v.request(false, 0, 0, w, h); err != nil {
			return 0, 0, err
		}
	}
	elapsed, n := time.Since(start), v.read-before
	// Drain the requests still outstanding, outside the timing.
	for range depth {
		if err := v.readUpdate(); err != nil {
			return 0, 0, err
		}
	}
	return n, elapsed, nil
}

// ping times n round trips of a non-incremental request for one pixel
// and its answer.
func (v *viewer) ping(n int) ([]time.Duration, error) {
	out := make([]time.Duration, 0, n)
	for range n {
		t := time.Now()
		if err := v.request(false, 0, 0, 1, 1); err != nil {
			return nil, err
		}
		if err := v.readUpdate(); err != nil {
			return nil, err
		}
		out = append(out, time.Since(t))
	}
	return out, nil
}
