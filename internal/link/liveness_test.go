package link_test

import (
	"context"
	"testing"
	"time"

	"lobby/internal/linkproto"
	"lobby/internal/provider"
)

// TestHubCutsAHungAgent: an agent at a 500 ms ping (its link dozes on
// the node between heartbeats) stays linked, shows a round trip, and
// runs commands; when everything it sends stops while its TCP connection
// stays open (a hung agent, or a path that drops packets), the hub cuts
// the link by itself: three intervals without a frame.
func TestHubCutsAHungAgent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	n := newNode(t, "hub1.test", false)
	px := newProxy(t, n.srv.Listener.Addr().String())
	a := newAgent(t, "host-h", memProvider(t), linkproto.HubSetting{URL: "http://" + px.Addr(), Ping: linkproto.Duration(500 * time.Millisecond)})
	if err := a.Join(ctx, n.token(t, 1, time.Now().Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	run(t, a)
	eventually(t, "the host is linked", func() bool { return n.hub.Linked(a.HostID()) })
	since := n.hub.Links()[0].Since
	eventually(t, "the link shows a round trip", func() bool { return n.hub.Links()[0].RTTMillis > 0 })
	conn, err := n.hosts.Get(a.HostID())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		eventually(t, "the node's reader of the link dozes", func() bool { return n.hub.Dozing(a.HostID()) })
		if _, err := conn.List(ctx); err != nil {
			t.Fatalf("list %d through a dozing link: %v", i, err)
		}
	}
	if ls := n.hub.Links(); len(ls) != 1 || ls[0].State != "up" || !ls[0].Since.Equal(since) {
		t.Fatalf("links = %+v, want the first link still up", ls)
	}

	px.frozen.Store(true) // only the hub itself can end the link now
	eventually(t, "the hub cuts the hung agent's link", func() bool { return !n.hub.Linked(a.HostID()) })
}

// TestHostRevokedElsewhereIsCut: a host revoked through another node
// (only the store says so) is cut by this node when its next report is
// written, with the other hosts' reports, in the hub's next flush.
func TestHostRevokedElsewhereIsCut(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	n := newNode(t, "hub1.test", false)
	p := memProvider(t)
	a := newAgent(t, "host-e", p, linkproto.HubSetting{URL: n.srv.URL})
	if err := a.Join(ctx, n.token(t, 1, time.Now().Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	run(t, a)
	eventually(t, "the host's report is recorded", func() bool {
		h, err := n.st.GetHost(ctx, a.HostID())
		return err == nil && h.MemTotal > 0
	})
	if err := n.st.RevokeHost(ctx, a.HostID()); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Create(ctx, provider.Spec{Name: "new-1"}); err != nil { // a change: the agent reports
		t.Fatal(err)
	}
	eventually(t, "the revoked host is cut", func() bool { return !n.hub.Linked(a.HostID()) })
}
