package link_test

import (
	"context"
	"encoding/binary"
	"io"
	"testing"
	"time"

	"lobby/internal/hostconn"
	"lobby/internal/linkproto"
	"lobby/internal/provider"
	"lobby/internal/provider/memory"
	"lobby/internal/rfb"
)

// BenchmarkConsole reads full-screen updates (1280x800, 32 bits per
// pixel, 4 MB each) of a synthetic desktop whose agent is linked to node
// B: "leaf" from B over the agent's link, "relay" from node A over the
// node link to B and on over the agent's link. The difference is the cost
// of the relay hop. One op is one update: a request, then the whole
// frame.
//
//	go test -run '^$' -bench Console -benchtime 3s ./internal/link/
func BenchmarkConsole(b *testing.B) {
	ctx := context.Background()
	c := newCluster(b)
	na, _ := c.node(b, "hub-a.test", 1)
	nb, _ := c.node(b, "hub-b.test", 2)
	linkedNodes(b, na, nb)
	p, err := memory.New(memory.Config{})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := p.Create(ctx, provider.Spec{Name: "d"}); err != nil {
		b.Fatal(err)
	}
	if _, err := p.Start(ctx, "d"); err != nil {
		b.Fatal(err)
	}
	ag := newAgent(b, "host-bench", p, linkproto.HubSetting{URL: nb.srv.URL, Ping: linkproto.Duration(5 * time.Second)})
	if err := ag.Join(ctx, nb.token(b, 1, time.Now().Add(time.Hour))); err != nil {
		b.Fatal(err)
	}
	run(b, ag)
	eventually(b, "the host is linked to B", func() bool { return nb.hub.Linked(ag.HostID()) })
	for _, path := range []struct {
		name string
		n    *node
	}{{"leaf", nb}, {"relay", na}} {
		b.Run(path.name, func(b *testing.B) {
			conn, err := path.n.hosts.Get(ag.HostID())
			if err != nil {
				b.Fatal(err)
			}
			readFrames(b, conn)
		})
	}
}

// readFrames opens the console and reads b.N full-screen updates.
func readFrames(b *testing.B, conn hostconn.Conn) {
	cs, err := conn.DialConsole(context.Background(), "d")
	if err != nil {
		b.Fatal(err)
	}
	defer cs.Close()
	if _, err := cs.Write([]byte{1}); err != nil {
		b.Fatal(err)
	}
	si, err := rfb.ReadServerInit(cs)
	if err != nil {
		b.Fatal(err)
	}
	frame := int64(si.Width) * int64(si.Height) * int64(si.PixelFormat.BytesPerPixel())
	req := rfb.AppendFramebufferUpdateRequest(nil, false, 0, 0, si.Width, si.Height)
	b.SetBytes(frame)
	b.ResetTimer()
	for range b.N {
		if _, err := cs.Write(req); err != nil {
			b.Fatal(err)
		}
		var hdr [4]byte
		if _, err := io.ReadFull(cs, hdr[:]); err != nil {
			b.Fatal(err)
		}
		if n := binary.BigEndian.Uint16(hdr[2:]); hdr[0] != 0 || n != 1 {
			b.Fatalf("update header %v, want one rectangle", hdr)
		}
		if _, err := rfb.ReadRect(cs); err != nil {
			b.Fatal(err)
		}
		if _, err := io.CopyN(io.Discard, cs, frame); err != nil {
			b.Fatal(err)
		}
	}
}
