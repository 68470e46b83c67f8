package link_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"lobby/internal/agent"
	"lobby/internal/hostconn"
	"lobby/internal/link"
	"lobby/internal/linkproto"
	"lobby/internal/lobby"
	"lobby/internal/pki"
	"lobby/internal/provider"
	"lobby/internal/store"
	"lobby/internal/store/sqlite"
)

// cluster is one store and CA shared by several in-process nodes.
type cluster struct {
	st store.Store
	ca *pki.CA
}

func newCluster(t testing.TB) *cluster {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "lobby.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	key, err := pki.ParseClusterKey(pki.NewClusterKeyString())
	if err != nil {
		t.Fatal(err)
	}
	ca, err := pki.LoadOrCreateCA(ctx, st, key, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return &cluster{st: st, ca: ca}
}

// node starts a hub of site in the cluster, records it in the nodes table
// at its address, and keeps its node links until stop (or the test's
// end). The nodes table's heartbeats stand still: NodeStale is long.
func (c *cluster) node(t testing.TB, name string, site int) (*node, func()) {
	t.Helper()
	cert, err := c.ca.IssueTLS(pki.Identity{Kind: pki.KindNode, ID: strconv.Itoa(site), Name: name}, time.Now(), pki.NodeLifetime)
	if err != nil {
		t.Fatal(err)
	}
	n := &node{st: c.st, ca: c.ca, hosts: hostconn.NewRegistry()}
	n.hub = &link.Hub{Store: c.st, CA: c.ca, Cert: cert, Name: name, SiteID: site, Hosts: n.hosts, Release: "test",
		Logger: slog.New(slog.DiscardHandler), NodePing: 100 * time.Millisecond, NodeStale: time.Hour}
	n.hosts.SetRouter(n.hub)
	mux := http.NewServeMux()
	mux.Handle(linkproto.Path, n.hub)
	n.srv = httptest.NewServer(mux)
	now := time.Now()
	if err := c.st.RegisterNode(context.Background(), &lobby.Node{SiteID: site, Name: name, Address: n.srv.URL, Version: "test", Started: now, Heartbeat: now},
		"test-"+n.srv.URL, now); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); n.hub.RunPeers(ctx) }()
	var once bool
	stop := func() {
		if once {
			return
		}
		once = true
		cancel()
		<-done
		n.hub.Close()
		n.srv.Close()
	}
	t.Cleanup(stop)
	return n, stop
}

// nodeLink returns n's link row of the node named peer.
func nodeLink(n *node, peer string) (link.Status, bool) {
	for _, l := range n.hub.Links() {
		if l.Kind == "node" && l.Peer == peer {
			return l, true
		}
	}
	return link.Status{}, false
}

func linkedNodes(t testing.TB, a, b *node) {
	t.Helper()
	eventually(t, a.hub.Name+" and "+b.hub.Name+" are linked, with round trips", func() bool {
		la, oka := nodeLink(a, b.hub.Name)
		lb, okb := nodeLink(b, a.hub.Name)
		return oka && okb && la.State == "up" && lb.State == "up" && la.RTTMillis > 0 && lb.RTTMillis > 0
	})
}

// TestNodeLinkRelay links an agent to hub B and reaches it from hub A
// over the node link: commands (their IDs kept end to end), the list, a
// console, placement; then a revocation made on A cuts the host on B.
func TestNodeLinkRelay(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := newCluster(t)
	a, _ := c.node(t, "hub-a.test", 1)
	b, _ := c.node(t, "hub-b.test", 2)
	linkedNodes(t, a, b)
	la, _ := nodeLink(a, "hub-b.test")
	if la.PeerSiteID != 2 || la.SiteID != 1 || la.Hub != "hub-a.test" || la.Address != b.srv.URL || la.Proto != linkproto.Version {
		t.Errorf("A's link to B = %+v, want site 1 → site 2 at B's URL, dialed by A (the lower site ID)", la)
	}

	ag := newAgent(t, "host-r", memProvider(t), linkproto.HubSetting{URL: b.srv.URL})
	if err := ag.Join(ctx, b.token(t, 1, time.Now().Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	done := run(t, ag)
	eventually(t, "the host is linked to B", func() bool { return b.hub.Linked(ag.HostID()) })
	eventually(t, "the store says the host is up on site 2", func() bool {
		h, err := c.st.GetHost(ctx, ag.HostID())
		return err == nil && h.State == lobby.HostUp && h.SiteID == 2
	})
	if a.hub.Linked(ag.HostID()) {
		t.Fatal("the host is linked to A too")
	}
	// The health record's agents: B's one agent, not its node link.
	eventually(t, "B's agent link has a round trip", func() bool {
		ls := b.hub.AgentLinks()
		return len(ls) == 1 && ls[0].RTT > 0
	})
	if ls := b.hub.AgentLinks(); ls[0].HostID != ag.HostID() || ls[0].Host != "host-r" || ls[0].Since.IsZero() {
		t.Errorf("B's agent links = %+v, want host-r (%s) with the time it linked", ls, ag.HostID())
	}
	if ls := a.hub.AgentLinks(); len(ls) != 0 {
		t.Errorf("A's agent links = %+v, want none (A has only a node link)", ls)
	}
	eventually(t, "A may place desktops on the host", func() bool {
		for _, id := range a.hub.Placeable(ctx) {
			if id == ag.HostID() {
				return true
			}
		}
		return false
	})

	conn, err := a.hosts.Get(ag.HostID())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Do(ctx, hostconn.Command{ID: "job-1", Op: hostconn.OpCreate, Desktop: "far-1"}); err != nil {
		t.Fatalf("create through A: %v", err)
	}
	if _, err := conn.Do(ctx, hostconn.Command{ID: "job-1", Op: hostconn.OpCreate, Desktop: "far-1"}); err != nil {
		t.Errorf("the same create resent through A: %v, want the agent's remembered success (the ID crossed both hops)", err)
	}
	if _, err := conn.Do(ctx, hostconn.Command{ID: "job-2", Op: hostconn.OpCreate, Desktop: "far-1"}); err == nil {
		t.Error("a second create of far-1 under another ID succeeded through A, want the provider's refusal")
	}
	if d, err := conn.Do(ctx, hostconn.Command{ID: "job-1", Op: hostconn.OpStart, Desktop: "far-1"}); err != nil || d.Power != lobby.PowerRunning {
		t.Fatalf("start far-1 through A = %+v, %v", d, err)
	}
	if _, err := conn.Do(ctx, hostconn.Command{ID: "job-3", Op: hostconn.OpGet, Desktop: "missing"}); lobby.ErrorKind(err) != lobby.KindNotFound || !errors.Is(err, provider.ErrNotFound) {
		t.Errorf("get of a missing desktop through A: %v, want not_found across both hops", err)
	}
	ds, err := conn.List(ctx)
	if err != nil || len(ds) != 1 || ds[0].Name != "far-1" || ds[0].Power != lobby.PowerRunning {
		t.Errorf("list through A = %+v, %v; want far-1 running", ds, err)
	}
	checkConsole(t, conn, "far-1")
	if _, err := conn.DialConsole(ctx, "missing"); lobby.ErrorKind(err) != lobby.KindNotFound {
		t.Errorf("console of a missing desktop through A: %v, want not_found", err)
	}

	// Revoked through A: B cuts the link at once, and the agent stops.
	if err := c.st.RevokeHost(ctx, ag.HostID()); err != nil {
		t.Fatal(err)
	}
	if a.hub.Cut(ag.HostID(), "the host's certificate was revoked") {
		t.Error("A says it had the host's link")
	}
	select {
	case err := <-done:
		var r *agent.RefusedError
		if !errors.As(err, &r) || r.Code != linkproto.CodeRevoked {
			t.Fatalf("agent ended with %v, want a revoked refusal", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the host revoked through A kept its link to B")
	}
	if _, err := conn.Do(ctx, hostconn.Command{ID: "job-4", Op: hostconn.OpGet, Desktop: "far-1"}); lobby.ErrorKind(err) != lobby.KindUnavailable || !strings.Contains(err.Error(), "revoked") {
		t.Errorf("a command to the revoked host: %v, want unavailable saying it was revoked", err)
	}
}

// checkConsole opens a console and reads its ServerInit: 64x48, the
// memory provider's framebuffer in these tests.
func checkConsole(t *testing.T, conn hostconn.Conn, desktop string) {
	t.Helper()
	cs, err := conn.DialConsole(context.Background(), desktop)
	if err != nil {
		t.Fatalf("console of %s: %v", desktop, err)
	}
	defer cs.Close()
	if _, err := cs.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
	var init [4]byte
	if _, err := io.ReadFull(cs, init[:]); err != nil {
		t.Fatalf("console of %s: ServerInit: %v", desktop, err)
	}
	if w, h := int(init[0])<<8|int(init[1]), int(init[2])<<8|int(init[3]); w != 64 || h != 48 {
		t.Errorf("console of %s: ServerInit size %dx%d, want 64x48", desktop, w, h)
	}
}

// TestNodeLinkFollowsHost stops the agent's hub: the agent moves to the
// other node, which serves it directly; the stopped node, started again,
// reaches it over the node link. A host linked nowhere is refused with a
// clear error.
func TestNodeLinkFollowsHost(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := newCluster(t)
	a, _ := c.node(t, "hub-a.test", 1)
	b, stopB := c.node(t, "hub-b.test", 2)
	linkedNodes(t, a, b)
	p := memProvider(t)
	if _, err := p.Create(ctx, provider.Spec{Name: "d-1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Start(ctx, "d-1"); err != nil {
		t.Fatal(err)
	}
	ag := newAgent(t, "host-m", p, linkproto.HubSetting{URL: b.srv.URL}, linkproto.HubSetting{URL: a.srv.URL})
	if err := ag.Join(ctx, b.token(t, 1, time.Now().Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	run(t, ag)
	eventually(t, "the host is linked to B", func() bool { return b.hub.Linked(ag.HostID()) })
	conn, err := a.hosts.Get(ag.HostID())
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "A reaches the host through B", func() bool {
		_, err := conn.Do(ctx, hostconn.Command{Op: hostconn.OpGet, Desktop: "d-1"})
		return err == nil
	})
	checkConsole(t, conn, "d-1")

	stopB()
	eventually(t, "the host moved to A", func() bool { return a.hub.Linked(ag.HostID()) })
	eventually(t, "the store says the host is up on site 1 (B's late down did not win)", func() bool {
		h, err := c.st.GetHost(ctx, ag.HostID())
		return err == nil && h.State == lobby.HostUp && h.SiteID == 1
	})
	checkConsole(t, conn, "d-1") // the same Conn follows the host

	b2, _ := c.node(t, "hub-b.test", 2)
	linkedNodes(t, a, b2)
	conn2, err := b2.hosts.Get(ag.HostID())
	if err != nil {
		t.Fatal(err)
	}
	checkConsole(t, conn2, "d-1")

	// A host that is linked nowhere.
	h := &lobby.Host{Name: "ghost", Provider: "memory", State: lobby.HostDown, SiteID: 2, CertSerial: "01"}
	if err := c.st.CreateHost(ctx, h); err != nil {
		t.Fatal(err)
	}
	g, _ := a.hosts.Get(h.ID)
	if _, err := g.List(ctx); lobby.ErrorKind(err) != lobby.KindUnavailable || !strings.Contains(err.Error(), "ghost is not linked to this node or any other") {
		t.Errorf("list of a host linked nowhere: %v, want unavailable naming it", err)
	}
	unknown, err := a.hosts.Get("hst_nope")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := unknown.List(ctx); lobby.ErrorKind(err) != lobby.KindNotFound {
		t.Errorf("list of an unknown host: %v, want not_found", err)
	}
}

// TestNodeLinkRefusals: only a node certificate of the cluster CA naming
// the site ID the node claims may link as a node.
func TestNodeLinkRefusals(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	a, _ := c.node(t, "hub-a.test", 1)
	issue := func(kind, id string) *tls.Certificate {
		cert, err := c.ca.IssueTLS(pki.Identity{Kind: kind, ID: id, Name: "someone"}, time.Now(), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return &cert
	}
	stranger, err := pki.NewCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := stranger.IssueTLS(pki.Identity{Kind: pki.KindNode, ID: "5", Name: "stranger"}, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cert *tls.Certificate
		site int
		code string
		want string
	}{
		{"a host certificate", issue(pki.KindHost, "hst_x"), 5, linkproto.CodeBadCert, "presented a host certificate, not a node's"},
		{"another site's certificate", issue(pki.KindNode, "3"), 5, linkproto.CodeBadCert, "names site 3, not site 5"},
		{"another CA", &foreign, 5, linkproto.CodeBadCert, "not issued by this cluster's CA"},
		{"this node's own site", issue(pki.KindNode, "1"), 1, linkproto.CodeBadCert, "claims this node's own site ID 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := rawHello(t, a, tt.cert, linkproto.Hello{Proto: linkproto.Version, Kind: linkproto.KindNode, Name: "intruder", SiteID: tt.site})
			if w.Error == nil || w.Error.Code != tt.code || !strings.Contains(w.Error.Message, tt.want) {
				t.Fatalf("welcome = %+v, want refusal %s saying %q", w.Error, tt.code, tt.want)
			}
		})
	}
	old := rawHello(t, a, issue(pki.KindNode, "4"), linkproto.Hello{Proto: 1, Kind: linkproto.KindNode, Name: "old", SiteID: 4})
	if old.Error == nil || old.Error.Code != linkproto.CodeIncompatible {
		t.Errorf("a node link of protocol 1: %+v, want incompatible", old.Error)
	}
	var refused int
	for _, l := range a.hub.Links() {
		if l.Kind == "node" && l.State == "refused" {
			refused++
		}
	}
	if refused != len(tests)+1 {
		t.Errorf("%d node refusals in the link list, want %d", refused, len(tests)+1)
	}
}

// TestNodeLinkDropsLeftNode: a node that stops beating (or leaves) loses
// its node links; when it beats again it is linked again.
func TestNodeLinkDropsLeftNode(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := newCluster(t)
	a, _ := c.node(t, "hub-a.test", 1)
	b, _ := c.node(t, "hub-b.test", 2)
	linkedNodes(t, a, b)
	beat := func(n *node, at time.Time) {
		t.Helper()
		if _, err := c.st.Heartbeat(ctx, n.hub.SiteID, "test-"+n.srv.URL, at); err != nil {
			t.Fatal(err)
		}
	}
	beat(b, time.Unix(0, 1)) // as cluster.Member.Leave does
	eventually(t, "A drops its link to B, which left", func() bool { _, ok := nodeLink(a, "hub-b.test"); return !ok })
	eventually(t, "B waits for A to dial it", func() bool {
		l, ok := nodeLink(b, "hub-a.test")
		return ok && l.State == "waiting" && strings.Contains(l.LastError, "lower site ID dials")
	})
	beat(b, time.Now())
	linkedNodes(t, a, b)
}
