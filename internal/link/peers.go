package link

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/yamux"

	"lobby/internal/linkproto"
	"lobby/internal/lobby"
	"lobby/internal/pki"
)

// Node links: every node keeps one link to every other live node of the
// cluster (the nodes table: a heartbeat within NodeStale), so that a user
// on any node reaches a desktop whose agent is linked to another one, and
// a job runs wherever it was claimed.
//
// One link per pair: the node with the lower site ID dials the other's
// listener, and the other only accepts. Site IDs are unique and both
// sides read the same table, so both agree on who dials without any
// exchange, and there is never a duplicate to drop. The dialer retries
// with jittered backoff while the peer is live, and gives up (closing the
// link) when the peer leaves the table or stops beating; the acceptor
// closes links of nodes that are no longer live. Both sides send
// heartbeats at NodePing and measure the round trip (shown in the link
// list); a link silent for three intervals ends.

// Defaults of the node links.
const (
	defaultNodePing  = time.Second
	defaultNodeStale = 10 * time.Second // cluster.DefaultStaleAfter
	syncPeersEvery   = time.Second
	peerBackoffMin   = 500 * time.Millisecond
	peerBackoffMax   = 10 * time.Second
)

// nodeLinks is a hub's links to the other nodes.
type nodeLinks struct {
	mu      sync.Mutex
	peers   map[int]*peer      // links up, by the peer's site ID
	dialers map[int]*dialer    // the peers this node dials, by site ID
	live    map[int]lobby.Node // the other live nodes, as last read
	closed  bool               // the hub is closing
	place   placeCache         // see Placeable
	dialWG  sync.WaitGroup     // dialers' goroutines
	cutWG   sync.WaitGroup     // cuts sent to peers
}

// peer is a link to another node, dialed or accepted.
type peer struct {
	hub     *Hub
	site    int
	name    string
	address string // the URL dialed, or the address the link came from
	dialed  bool
	proto   int
	release string
	since   time.Time
	sess    *yamux.Session
	ctx     context.Context // ends with the link
	cancel  context.CancelFunc
	watch   *watch // silence and round trips (see pings)
	errMu   sync.Mutex
	err     string
}

// dialer keeps a link to one peer up.
type dialer struct {
	node   lobby.Node
	cancel context.CancelFunc
	since  time.Time // trying since
	err    string    // the last attempt's error (under nodeLinks.mu)
}

func (h *Hub) nodePing() time.Duration {
	if h.NodePing > 0 {
		return h.NodePing
	}
	return defaultNodePing
}

func (h *Hub) nodeStale() time.Duration {
	if h.NodeStale > 0 {
		return h.NodeStale
	}
	return defaultNodeStale
}

// RunPeers keeps this node linked to every other live node until ctx
// ends, then closes those links.
func (h *Hub) RunPeers(ctx context.Context) {
	t := time.NewTicker(syncPeersEvery)
	defer t.Stop()
	for {
		h.syncPeers(ctx)
		select {
		case <-ctx.Done():
			h.stopDialers()
			return
		case <-t.C:
		}
	}
}

// syncPeers reads the live nodes, dials those this node should, and drops
// links to nodes that left or died.
func (h *Hub) syncPeers(ctx context.Context) {
	nodes, err := h.Store.ListNodes(ctx)
	if err != nil {
		if ctx.Err() == nil {
			h.Logger.Warn("list nodes for node links", "err", err)
		}
		return // keep what is up: the store may be back at the next pass
	}
	now := h.now()
	live := map[int]lobby.Node{}
	for _, n := range nodes {
		if n.SiteID != h.SiteID && now.Sub(n.Heartbeat) < h.nodeStale() {
			live[n.SiteID] = n
		}
	}
	nl := &h.nl
	nl.mu.Lock()
	defer nl.mu.Unlock()
	if nl.closed {
		return
	}
	nl.live = live
	if nl.dialers == nil {
		nl.dialers = map[int]*dialer{}
	}
	for site, d := range nl.dialers {
		if n, ok := live[site]; !ok || n.Address != d.node.Address {
			d.cancel()
			delete(nl.dialers, site)
		}
	}
	for site, n := range live {
		if site > h.SiteID && nl.dialers[site] == nil {
			dctx, cancel := context.WithCancel(ctx)
			d := &dialer{node: n, cancel: cancel, since: now}
			nl.dialers[site] = d
			nl.dialWG.Add(1)
			go func() { defer nl.dialWG.Done(); h.dialLoop(dctx, d) }()
		}
	}
	for site, p := range nl.peers {
		if _, ok := live[site]; !ok {
			p.close("node " + p.name + " left the cluster or stopped beating")
		}
	}
}

// stopDialers ends every dialer and waits for them.
func (h *Hub) stopDialers() {
	nl := &h.nl
	nl.mu.Lock()
	for site, d := range nl.dialers {
		d.cancel()
		delete(nl.dialers, site)
	}
	nl.mu.Unlock()
	nl.dialWG.Wait()
}

// dialLoop links to one peer until ctx ends, retrying with backoff.
func (h *Hub) dialLoop(ctx context.Context, d *dialer) {
	round := 0
	for ctx.Err() == nil {
		up, err := h.dialPeer(ctx, d.node)
		if ctx.Err() != nil {
			return
		}
		msg := "the link ended"
		if err != nil {
			msg = err.Error()
		}
		h.nl.mu.Lock()
		d.err = msg
		if up > 0 {
			d.since = h.now()
		}
		h.nl.mu.Unlock()
		var wait time.Duration
		if up > 0 {
			round, wait = 0, rand.N(peerBackoffMin)
		} else {
			round++
			bound := min(peerBackoffMin<<min(round, 10), peerBackoffMax)
			wait = rand.N(bound) + bound/4
			h.Logger.Debug("node link attempt failed", "peer", d.node.Name, "site_id", d.node.SiteID, "address", d.node.Address, "err", msg)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// dialPeer runs one link to a peer until it ends and says how long it
// was up.
func (h *Hub) dialPeer(ctx context.Context, n lobby.Node) (time.Duration, error) {
	hctx, cancel := context.WithTimeout(ctx, HandshakeTimeout)
	defer cancel()
	raw, err := Dial(hctx, n.Address, false)
	if err != nil {
		return 0, err
	}
	conn := tls.Client(raw, nodeClientTLS(h.CA.Cert, h.Cert, n.SiteID, n.Address))
	if dl, ok := hctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	ok := false
	defer func() {
		if !ok {
			conn.Close()
		}
	}()
	if err := conn.HandshakeContext(hctx); err != nil {
		return 0, fmt.Errorf("link to node %s (%s): %w", n.Name, n.Address, err)
	}
	hello := linkproto.Hello{Proto: linkproto.Version, Kind: linkproto.KindNode, Name: h.Name, Release: h.Release, SiteID: h.SiteID}
	if err := linkproto.WriteFrame(conn, hello); err != nil {
		return 0, fmt.Errorf("link to node %s (%s): %w", n.Name, n.Address, err)
	}
	var w linkproto.Welcome
	if err := linkproto.ReadFrame(conn, &w); err != nil {
		return 0, fmt.Errorf("node %s (%s) closed the link without an answer: %w", n.Name, n.Address, err)
	}
	if w.Error != nil {
		return 0, fmt.Errorf("node %s (%s) refused this node's link: %s", n.Name, n.Address, w.Error.Message)
	}
	_ = conn.SetDeadline(time.Time{})
	sess, err := Client(conn)
	if err != nil {
		return 0, err
	}
	ok = true
	start := h.now()
	p := &peer{hub: h, site: n.SiteID, name: w.Hub, address: n.Address, dialed: true, proto: w.Proto, release: w.Release, since: start, sess: sess,
		watch: peerWatch(conn, h.nodePing())}
	// The dialer is stopped when the peer leaves the node list (or this
	// node stops): its link ends with it.
	stop := context.AfterFunc(ctx, func() { p.close("node " + n.Name + " left the cluster or stopped beating, or this node is stopping") })
	defer stop()
	h.servePeer(p)
	if msg := p.lastError(); msg != "" {
		return h.now().Sub(start), errors.New(msg)
	}
	return h.now().Sub(start), nil
}

// nodeClientTLS is the dialing node's side of a node link's inner TLS: it
// presents this node's certificate and accepts only the node of site ID
// site, certified by the cluster CA.
func nodeClientTLS(ca *x509.Certificate, cert tls.Certificate, site int, addr string) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		InsecureSkipVerify: true, //nolint:gosec // verified below against the cluster CA
		ServerName:         "lobby-link",
		Certificates:       []tls.Certificate{cert},
		VerifyConnection: func(cs tls.ConnectionState) error {
			_, err := verifyNode(ca, cs.PeerCertificates, site, addr)
			return err
		},
	}
}

// verifyNode checks that chain is a node certificate of the cluster CA,
// naming site ID site.
func verifyNode(ca *x509.Certificate, chain []*x509.Certificate, site int, addr string) (pki.Identity, error) {
	id, err := pki.Verify(ca, chain, time.Now())
	if err != nil {
		return id, fmt.Errorf("the node at %s: %w", addr, err)
	}
	if id.Kind != pki.KindNode {
		return id, fmt.Errorf("the node at %s presented a %s certificate, not a node's", addr, id.Kind)
	}
	if id.ID != strconv.Itoa(site) {
		return id, fmt.Errorf("the certificate of the node at %s names site %s, not site %d: another node took that address, or the node list is stale", addr, id.ID, site)
	}
	return id, nil
}

// acceptNode serves a link another node dialed.
func (h *Hub) acceptNode(conn *tls.Conn, hello linkproto.Hello, st Status) {
	st.Kind, st.PeerSiteID = "node", hello.SiteID
	if hello.Proto < linkproto.MinNodeVersion {
		h.refuse(conn, st, linkproto.CodeIncompatible, "node links need link protocol version %d or later, and node %s speaks %d: upgrade it", linkproto.MinNodeVersion, hello.Name, hello.Proto)
		return
	}
	if _, err := verifyNode(h.CA.Cert, conn.ConnectionState().PeerCertificates, hello.SiteID, st.Address); err != nil {
		h.refuse(conn, st, linkproto.CodeBadCert, "this node's certificate is refused: %v; give every node the same LOBBY_CLUSTER_KEY", err)
		return
	}
	if hello.SiteID == h.SiteID {
		h.refuse(conn, st, linkproto.CodeBadCert, "node %s claims this node's own site ID %d: give every node its own --site-id", hello.Name, h.SiteID)
		return
	}
	if err := linkproto.WriteFrame(conn, linkproto.Welcome{Proto: linkproto.Version, Hub: h.Name, SiteID: h.SiteID, Ping: linkproto.Duration(h.nodePing()), Release: h.Release}); err != nil {
		return
	}
	_ = conn.SetDeadline(time.Time{})
	sess, err := server(conn, h.nodePing())
	if err != nil {
		return
	}
	h.servePeer(&peer{hub: h, site: hello.SiteID, name: hello.Name, address: st.Address, proto: hello.Proto, release: hello.Release, since: h.now(), sess: sess,
		watch: peerWatch(conn, h.nodePing())})
}

// servePeer registers a node link, serves the streams the peer opens and
// pings it, until the link ends.
func (h *Hub) servePeer(p *peer) {
	p.ctx, p.cancel = context.WithCancel(context.Background())
	defer p.cancel()
	defer p.sess.Close()
	if !h.addPeer(p) {
		p.setError("the node is stopping")
		return
	}
	h.Logger.Info("node linked", "peer", p.name, "site_id", p.site, "address", p.address, "dialed", p.dialed)
	done := make(chan struct{})
	go func() { defer close(done); p.pings() }()
	var wg sync.WaitGroup
	for {
		s, err := p.sess.AcceptStream()
		if err != nil {
			break
		}
		wg.Add(1)
		go func() { defer wg.Done(); p.serveStream(s) }()
	}
	p.sess.Close()
	p.cancel()
	<-done
	wg.Wait()
	h.removePeer(p)
	h.Logger.Info("node unlinked", "peer", p.name, "site_id", p.site, "reason", p.lastError())
}

// addPeer registers a link, replacing (and closing) an older one of the
// same site.
func (h *Hub) addPeer(p *peer) bool {
	nl := &h.nl
	nl.mu.Lock()
	if nl.closed {
		nl.mu.Unlock()
		return false
	}
	if nl.peers == nil {
		nl.peers = map[int]*peer{}
	}
	old := nl.peers[p.site]
	nl.peers[p.site] = p
	nl.place.at = time.Time{} // placeable hosts changed
	nl.mu.Unlock()
	if old != nil {
		old.close("replaced by a newer link of the same node")
	}
	return true
}

func (h *Hub) removePeer(p *peer) {
	nl := &h.nl
	nl.mu.Lock()
	defer nl.mu.Unlock()
	if nl.peers[p.site] == p {
		delete(nl.peers, p.site)
		nl.place.at = time.Time{}
	}
}

// peerOf returns the link up to the node of site, or nil.
func (h *Hub) peerOf(site int) *peer {
	h.nl.mu.Lock()
	defer h.nl.mu.Unlock()
	return h.nl.peers[site]
}

// closePeers ends every node link (the node is stopping).
func (h *Hub) closePeers() {
	nl := &h.nl
	nl.mu.Lock()
	nl.closed = true
	ps := make([]*peer, 0, len(nl.peers))
	for _, p := range nl.peers {
		ps = append(ps, p)
	}
	for _, d := range nl.dialers {
		d.cancel()
	}
	nl.mu.Unlock()
	for _, p := range ps {
		p.close("the node is stopping")
	}
	nl.dialWG.Wait()
	nl.cutWG.Wait()
}

// close ends the link without waiting (closing waits for the peer's
// goodbye).
func (p *peer) close(why string) {
	p.setError(why)
	go p.sess.Close()
}

func (p *peer) setError(msg string) {
	p.errMu.Lock()
	p.err = msg
	p.errMu.Unlock()
}

func (p *peer) lastError() string {
	p.errMu.Lock()
	defer p.errMu.Unlock()
	return p.err
}

// peerWatch watches a node link; its first round trip is measured at
// once (node links are few, and the list shows it).
func peerWatch(c net.Conn, interval time.Duration) *watch {
	w := newWatch(c, interval)
	if w != nil {
		w.nextRTT = time.Now()
	}
	return w
}

// pings proves a node link alive both ways, as an agent's link is (see
// watch), with both sides doing both halves: each sends a heartbeat every
// interval, ends the link when the other was silent for three, and pings
// for the round trip every RTTEvery intervals. Node links are few: each
// has its own ticker instead of the hub's sweeper.
func (p *peer) pings() {
	if p.watch == nil {
		return
	}
	t := time.NewTicker(p.watch.interval)
	defer t.Stop()
	for {
		select {
		case <-p.sess.CloseChan():
			return
		case now := <-t.C:
			if err := p.watch.check(now); err != nil {
				p.close(err.Error())
				return
			}
			if err := p.watch.ws.writeFrame(opPong, nil); err != nil {
				p.close("heartbeat: " + err.Error())
				return
			}
		}
	}
}
