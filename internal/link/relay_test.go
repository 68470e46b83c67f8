package link

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"net"
	"testing"
	"time"
)

// chunkyReader returns data in reads of random sizes, some tiny (an idle
// direction's events), some filling the buffer (a streaming one).
type chunkyReader struct{ data []byte }

func (c *chunkyReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), len(c.data))
	if rand.N(3) == 0 {
		n = min(n, 1+rand.N(64))
	}
	n = copy(p, c.data[:n])
	c.data = c.data[n:]
	return n, nil
}

func TestCopyAdaptiveKeepsOrder(t *testing.T) {
	t.Parallel()
	data := pattern(5<<20+13, 7)
	var w bytes.Buffer // what it wrote, in order, across buffer switches
	copyAdaptive(&w, &chunkyReader{data: data})
	if !bytes.Equal(w.Bytes(), data) {
		t.Fatalf("copied %d bytes, not the %d read in order", w.Len(), len(data))
	}
}

// TestRelayEndsWhenOneSideCloses: a viewer that leaves ends the relay
// even though the console side stays silent.
func TestRelayEndsWhenOneSideCloses(t *testing.T) {
	t.Parallel()
	viewer, viewerPeer := net.Pipe()
	console, consolePeer := net.Pipe()
	defer consolePeer.Close()
	ended := make(chan struct{})
	go func() {
		Relay(context.Background(), viewer, console)
		close(ended)
	}()
	go func() { _, _ = io.Copy(io.Discard, consolePeer) }()
	if _, err := viewerPeer.Write([]byte("key event")); err != nil {
		t.Fatal(err)
	}
	viewerPeer.Close()
	select {
	case <-ended:
	case <-time.After(30 * time.Second):
		t.Fatal("the relay did not end after the viewer closed")
	}
}
