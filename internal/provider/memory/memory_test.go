package memory

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"lobby/internal/lobby"
	"lobby/internal/provider"
	"lobby/internal/rfb"
)

func newProvider(t testing.TB) *Provider {
	t.Helper()
	p, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// readUpdate reads one FramebufferUpdate with Raw rectangles and returns
// its rectangles.
func readUpdate(t testing.TB, r io.Reader, bpp int) []rfb.Rect {
	t.Helper()
	var head [4]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		t.Fatalf("read update header: %v", err)
	}
	if head[0] != rfb.MsgFramebufferUpdate {
		t.Fatalf("message type %d, want FramebufferUpdate", head[0])
	}
	var rects []rfb.Rect
	for range binary.BigEndian.Uint16(head[2:]) {
		rect, err := rfb.ReadRect(r)
		if err != nil {
			t.Fatal(err)
		}
		if rect.Encoding != rfb.EncodingRaw {
			t.Fatalf("encoding %d, want Raw", rect.Encoding)
		}
		if _, err := io.CopyN(io.Discard, r, int64(rect.Width)*int64(rect.Height)*int64(bpp)); err != nil {
			t.Fatalf("read pixels: %v", err)
		}
		rects = append(rects, rect)
	}
	return rects
}

// checkStream sends ClientInit, reads ServerInit and two full updates, the
// second after switching to 16 bits per pixel.
func checkStream(t *testing.T, conn net.Conn, wantName string) {
	t.Helper()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	if _, err := conn.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
	si, err := rfb.ReadServerInit(br)
	if err != nil {
		t.Fatal(err)
	}
	if si.Width != 1280 || si.Height != 800 || si.PixelFormat != rfb.DefaultPixelFormat || si.Name != wantName {
		t.Fatalf("ServerInit = %+v", si)
	}
	full := rfb.Rect{Width: 1280, Height: 800}
	msg := []byte{rfb.MsgSetEncodings, 0, 0, 2, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0x21}
	msg = append(msg, rfb.MsgPointerEvent, 0, 0, 1, 0, 1)
	msg = rfb.AppendFramebufferUpdateRequest(msg, false, 0, 0, 1280, 800)
	if _, err := conn.Write(msg); err != nil {
		t.Fatal(err)
	}
	if rects := readUpdate(t, br, 4); len(rects) != 1 || rects[0] != full {
		t.Fatalf("update 1 rectangles = %+v", rects)
	}
	pf16 := rfb.PixelFormat{BitsPerPixel: 16, Depth: 16, TrueColor: true, RedMax: 31, GreenMax: 63, BlueMax: 31, RedShift: 11, GreenShift: 5}
	msg = append([]byte{rfb.MsgSetPixelFormat, 0, 0, 0}, must(pf16.AppendBinary(nil))...)
	msg = append(msg, rfb.MsgClientCutText, 0, 0, 0, 0, 0, 0, 2, 'h', 'i')
	msg = rfb.AppendFramebufferUpdateRequest(msg, true, 0, 0, 10, 10)
	if _, err := conn.Write(msg); err != nil {
		t.Fatal(err)
	}
	if rects := readUpdate(t, br, 2); len(rects) != 1 || rects[0] != full {
		t.Fatalf("update 2 rectangles = %+v", rects)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestDialConsole(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := newProvider(t)
	if _, err := p.Create(ctx, provider.Spec{Name: "bench-1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.DialConsole(ctx, "bench-1"); lobby.ErrorKind(err) != lobby.KindConflict {
		t.Fatalf("DialConsole on a stopped desktop: %v, want a conflict", err)
	}
	if _, err := p.Start(ctx, "bench-1"); err != nil {
		t.Fatal(err)
	}
	conn, err := p.DialConsole(ctx, "bench-1")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	checkStream(t, conn, "bench-1")
}

func TestListenSynthetic(t *testing.T) {
	t.Parallel()
	l, err := ListenSynthetic("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := l.Accept(); err == nil {
		t.Error("Accept on a synthetic listener: no error")
	}
	conn, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	// A 3.8 client choosing None.
	want := "RFB 003.008\n\x01\x01\x00\x00\x00\x00"
	if _, err := conn.Write([]byte("RFB 003.008\n\x01")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(want))
	if _, err := io.ReadFull(conn, got); err != nil || string(got) != want {
		t.Fatalf("handshake = %q, %v; want %q", got, err, want)
	}
	checkStream(t, conn, "lobby synthetic")
	// Close ends open connections too.
	l.Close()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("read after Close: %v, want EOF", err)
	}
}

func TestServeSyntheticRejectsUnknownMessage(t *testing.T) {
	t.Parallel()
	a, b := net.Pipe()
	defer a.Close()
	done := make(chan error, 1)
	go func() { done <- ServeSynthetic(b) }()
	go io.Copy(io.Discard, a)
	a.Write([]byte{1, 200})
	if err := <-done; err == nil {
		t.Fatal("ServeSynthetic accepted message type 200")
	}
}

func TestLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := newProvider(t)
	if _, err := p.Create(ctx, provider.Spec{Name: "Bad Name"}); lobby.ErrorKind(err) != lobby.KindInvalid {
		t.Fatalf("Create with a bad name: %v", err)
	}
	d, err := p.Create(ctx, provider.Spec{Name: "d1"})
	if err != nil || d.Power != lobby.PowerStopped || d.Template != "default" || d.ConsoleKind != "vnc" {
		t.Fatalf("Create = %+v, %v", d, err)
	}
	if _, err := p.Create(ctx, provider.Spec{Name: "d1"}); lobby.ErrorKind(err) != lobby.KindConflict {
		t.Fatalf("Create twice: %v", err)
	}
	if err := p.Suspend(ctx, "d1"); lobby.ErrorKind(err) != lobby.KindConflict {
		t.Fatalf("Suspend a stopped desktop: %v", err)
	}
	steps := []struct {
		do   func() error
		want lobby.PowerState
	}{
		{func() error { _, err := p.Start(ctx, "d1"); return err }, lobby.PowerRunning},
		{func() error { _, err := p.Start(ctx, "d1"); return err }, lobby.PowerRunning},
		{func() error { return p.Suspend(ctx, "d1") }, lobby.PowerSuspended},
		{func() error { _, err := p.Resume(ctx, "d1"); return err }, lobby.PowerRunning},
		{func() error { return p.Stop(ctx, "d1") }, lobby.PowerStopped},
		{func() error { return p.Stop(ctx, "d1") }, lobby.PowerStopped},
	}
	for i, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if d, err := p.Get(ctx, "d1"); err != nil || d.Power != s.want {
			t.Fatalf("step %d: Get = %+v, %v; want %s", i, d, err, s.want)
		}
	}
	if list, err := p.List(ctx); err != nil || len(list) != 1 {
		t.Fatalf("List = %+v, %v", list, err)
	}
	for range 2 {
		if err := p.Delete(ctx, "d1"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := p.Get(ctx, "d1"); !errors.Is(err, provider.ErrNotFound) {
		t.Fatalf("Get after Delete: %v", err)
	}
	if _, err := p.Start(ctx, "d1"); !errors.Is(err, provider.ErrNotFound) {
		t.Fatalf("Start after Delete: %v", err)
	}
	if _, err := New(Config{Width: 9000, Height: 10}); lobby.ErrorKind(err) != lobby.KindInvalid {
		t.Fatalf("New with width 9000: %v", err)
	}
}

// BenchmarkDialConsole measures the synthetic source's throughput through
// net.Pipe: one full 1280x800x32 frame per request.
func BenchmarkDialConsole(b *testing.B) {
	ctx := context.Background()
	p := newProvider(b)
	p.Create(ctx, provider.Spec{Name: "bench"})
	p.Start(ctx, "bench")
	conn, err := p.DialConsole(ctx, "bench")
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReaderSize(conn, 64<<10)
	conn.Write([]byte{1})
	if _, err := rfb.ReadServerInit(br); err != nil {
		b.Fatal(err)
	}
	req := rfb.AppendFramebufferUpdateRequest(nil, true, 0, 0, 1280, 800)
	b.SetBytes(16 + 1280*800*4)
	b.ResetTimer()
	for b.Loop() {
		conn.Write(req)
		readUpdate(b, br, 4)
	}
}
