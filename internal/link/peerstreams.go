package link

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"lobby/internal/hostconn"
	"lobby/internal/linkproto"
	"lobby/internal/lobby"
)

// serveStream serves a stream the peer opened.
func (p *peer) serveStream(s net.Conn) {
	defer s.Close()
	open, err := readOpen(s)
	if err != nil {
		return
	}
	switch open.Type {
	case linkproto.StreamHost:
		p.serveHost(s, open.Host)
	case linkproto.StreamCut:
		p.hub.cutLocal(open.Host, open.Reason)
		_ = linkproto.WriteFrame(s, linkproto.Result{})
	default:
		_ = linkproto.WriteFrame(s, linkproto.Result{Error: &linkproto.Error{Code: string(lobby.KindInvalid),
			Message: fmt.Sprintf("node %s (link protocol %d) has no node stream type %q", p.hub.Name, linkproto.Version, open.Type)}})
	}
}

// serveHost serves a stream for a host linked to this node: the routing
// answer, then the request the peer forwards, run on the host's
// connection as if it came from this node (a command keeps its ID).
func (p *peer) serveHost(s net.Conn, hostID string) {
	h := p.hub
	c, ok := h.Hosts.Linked(hostID)
	if !ok {
		_ = linkproto.WriteFrame(s, linkproto.Result{Error: &linkproto.Error{Code: string(lobby.KindUnavailable),
			Message: fmt.Sprintf("host %s is not linked to node %s (site %d) now: its agent may be moving to another node; try again in a moment", hostID, h.Name, h.SiteID)}})
		return
	}
	if err := linkproto.WriteFrame(s, linkproto.Result{}); err != nil {
		return
	}
	ServeLeafStream(p.ctx, s, hostLeaf{c}, "node "+h.Name)
}

// hostLeaf serves a peer's streams to a host on the host's connection.
type hostLeaf struct{ c hostconn.Conn }

func (l hostLeaf) Command(ctx context.Context, cmd linkproto.Command) (linkproto.Result, bool) {
	return RunCommand(ctx, l.c, cmd), true
}

func (l hostLeaf) List(ctx context.Context) (linkproto.Report, error) {
	ds, err := l.c.List(ctx)
	if err != nil {
		return linkproto.Report{}, err // the peer sees the stream end: the link to the host dropped
	}
	rep := linkproto.Report{Desktops: make([]linkproto.Desktop, len(ds))}
	for i, d := range ds {
		rep.Desktops[i] = ToWire(d)
	}
	return rep, nil
}

func (l hostLeaf) DialConsole(ctx context.Context, desktop string) (net.Conn, error) {
	return l.c.DialConsole(ctx, desktop)
}

// host is a connection to a host linked to the peer.
func (p *peer) host(id, name string) agentStreams {
	return agentStreams{where: "host " + name + " through node " + p.name, open: func() (net.Conn, error) {
		s, err := p.sess.OpenStream()
		if err != nil {
			return nil, err
		}
		if err := linkproto.WriteFrame(s, linkproto.Open{Type: linkproto.StreamHost, Host: id}); err != nil {
			s.Close()
			return nil, err
		}
		return &routed{Conn: s}, nil
	}}
}

// cutPeers asks every peer to end a host's link (it was revoked or
// removed here), without waiting.
func (h *Hub) cutPeers(hostID, why string) {
	nl := &h.nl
	nl.mu.Lock()
	defer nl.mu.Unlock()
	if nl.closed {
		return
	}
	for _, p := range nl.peers {
		nl.cutWG.Add(1)
		go func() {
			defer nl.cutWG.Done()
			if err := p.cut(hostID, why); err != nil {
				h.Logger.Warn("ask a node to cut a host's link", "peer", p.name, "host", hostID, "err", err)
			}
		}()
	}
}

func (p *peer) cut(hostID, why string) error {
	s, err := p.sess.OpenStream()
	if err != nil {
		return err
	}
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(HandshakeTimeout))
	if err := linkproto.WriteFrame(s, linkproto.Open{Type: linkproto.StreamCut, Host: hostID, Reason: why}); err != nil {
		return err
	}
	var res linkproto.Result
	if err := linkproto.ReadFrame(s, &res); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// peerLinks are the link list's rows of node links: links up, peers this
// node dials but has no link to, and live nodes that should dial this one
// but have not.
func (h *Hub) peerLinks() []Status {
	nl := &h.nl
	nl.mu.Lock()
	defer nl.mu.Unlock()
	var out []Status
	row := func(state string, site int, name, addr string, since time.Time, lastErr string) Status {
		return Status{Kind: "node", State: state, Hub: h.Name, SiteID: h.SiteID, Peer: name, PeerSiteID: site, Address: addr,
			Since: since, Ping: linkproto.Duration(h.nodePing()), LastError: lastErr}
	}
	for site, p := range nl.peers {
		st := row("up", site, p.name, p.address, p.since, p.lastError())
		if p.watch != nil {
			st.RTTMillis = float64(p.watch.RTT()) / 1e6
		}
		st.Proto, st.Release = p.proto, p.release
		out = append(out, st)
	}
	for site, d := range nl.dialers {
		if nl.peers[site] == nil {
			out = append(out, row("connecting", site, d.node.Name, d.node.Address, d.since, d.err))
		}
	}
	for site, n := range nl.live {
		if site < h.SiteID && nl.peers[site] == nil {
			out = append(out, row("waiting", site, n.Name, n.Address, n.Heartbeat,
				fmt.Sprintf("waiting for node %s (site %d) to link to this node: the node with the lower site ID dials", n.Name, site)))
		}
	}
	return out
}
