package link

import (
	"io"
	"sync"
)

// bigReadBuffer is the size a link's read buffer grows to while large
// frames arrive: a console stream is read in a few syscalls per MiB
// instead of two per 16 KiB TLS record.
const bigReadBuffer = 256 << 10

var bigReadBuffers = sync.Pool{New: func() any { b := make([]byte, bigReadBuffer); return &b }}

// readBuffer buffers a WebSocket's reads. It is small (every link has one
// and most are quiet) until grow, and goes back to small when drained
// (shrink), returning the big buffer to a pool shared by all links.
type readBuffer struct {
	src   io.Reader
	small []byte
	buf   []byte
	big   *[]byte // from bigReadBuffers while grown
	r, w  int
	err   error // from src, returned once the buffer is drained
}

func newReadBuffer(src io.Reader, size int) *readBuffer {
	small := make([]byte, size)
	return &readBuffer{src: src, small: small, buf: small}
}

// Buffered is the number of bytes that can be read without a syscall.
func (b *readBuffer) Buffered() int { return b.w - b.r }

func (b *readBuffer) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if b.r == b.w {
		if b.err != nil {
			err := b.err
			b.err = nil
			return 0, err
		}
		if len(p) >= len(b.buf) { // no point copying through the buffer
			return b.src.Read(p)
		}
		b.r, b.w = 0, 0
		n, err := b.src.Read(b.buf)
		b.w = n
		if n == 0 {
			return 0, err
		}
		b.err = err
	}
	n := copy(p, b.buf[b.r:b.w])
	b.r += n
	return n, nil
}

// grow switches to a big buffer, keeping what is buffered.
func (b *readBuffer) grow() {
	if b.big != nil {
		return
	}
	b.big = bigReadBuffers.Get().(*[]byte)
	b.w = copy(*b.big, b.buf[b.r:b.w])
	b.r = 0
	b.buf = *b.big
}

// shrink gives the big buffer back once it is drained.
func (b *readBuffer) shrink() {
	if b.big == nil || b.r != b.w {
		return
	}
	bigReadBuffers.Put(b.big)
	b.big, b.buf, b.r, b.w = nil, b.small, 0, 0
}
