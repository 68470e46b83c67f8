package link

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

func TestReadBuffer(t *testing.T) {
	t.Parallel()
	data := pattern(600<<10, 1)
	boom := errors.New("boom")
	// One byte at a time from the source, then an error with the last.
	src := iotest.OneByteReader(io.MultiReader(bytes.NewReader(data[:10]), &errAfter{data: data[10:], err: boom}))
	b := newReadBuffer(src, 4)
	var got []byte
	p := make([]byte, 3)
	n, _ := b.Read(p)
	got = append(got, p[:n]...)
	b.grow()
	if b.big == nil || len(b.buf) != bigReadBuffer {
		t.Fatal("grow did not switch to the big buffer")
	}
	b.shrink() // ignored: not drained
	if b.big == nil && b.Buffered() > 0 {
		t.Fatal("shrink dropped buffered bytes")
	}
	var err error
	for err == nil {
		n, err = b.Read(p)
		got = append(got, p[:n]...)
		if b.Buffered() == 0 {
			b.shrink()
		}
	}
	if !errors.Is(err, boom) || !bytes.Equal(got, data) {
		t.Fatalf("read %d of %d bytes (equal %v), then %v; want all, then boom", len(got), len(data), bytes.Equal(got, data), err)
	}
	if b.big != nil || len(b.buf) != 4 {
		t.Fatal("a drained buffer did not shrink")
	}

	// A read larger than the buffer goes to the source directly.
	direct := newReadBuffer(bytes.NewReader(data), 4)
	big := make([]byte, 64)
	if n, err := direct.Read(big); n != 64 || err != nil || direct.Buffered() != 0 {
		t.Fatalf("large read: %d, %v, %d buffered", n, err, direct.Buffered())
	}
}

// errAfter reads data, returning err together with its last byte.
type errAfter struct {
	data []byte
	err  error
}

func (e *errAfter) Read(p []byte) (int, error) {
	n := copy(p, e.data)
	e.data = e.data[n:]
	if len(e.data) == 0 {
		return n, e.err
	}
	return n, nil
}
