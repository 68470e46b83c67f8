package link

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/yamux"

	"lobby/internal/hostconn"
	"lobby/internal/linkproto"
	"lobby/internal/lobby"
	"lobby/internal/pki"
	"lobby/internal/provider"
	"lobby/internal/store"
)

// leaf is one agent linked to this node; it is the host's hostconn.Conn
// (agentStreams over the link's streams).
type leaf struct {
	agentStreams
	hub    *Hub
	sess   *yamux.Session
	status Status // fixed at link time; RTT and LastError below
	watch  *watch // nil only for links that are not WebSockets (tests)

	// The desktops of the last report reconciled with the store, and
	// when; only the report stream's goroutine uses them.
	reconciled   []linkproto.Desktop
	reconciledAt time.Time
	errMu        sync.Mutex
	err          string
	gone         atomic.Bool // unregistered: the sweeper drops it
}

var _ hostconn.Conn = (*leaf)(nil)

// serveLeaf authenticates a leaf by its certificate and serves its link.
func (h *Hub) serveLeaf(conn *tls.Conn, hello linkproto.Hello, st Status) {
	now := h.now()
	chain := conn.ConnectionState().PeerCertificates
	id, err := pki.Verify(h.CA.Cert, chain, now)
	if err != nil {
		h.refuse(conn, st, linkproto.CodeBadCert, "this host's certificate is refused: %v; join the host again with a new token", err)
		return
	}
	if id.Kind != pki.KindHost {
		h.refuse(conn, st, linkproto.CodeBadCert, "this certificate names a %s, not a host", id.Kind)
		return
	}
	st.HostID, st.Peer = id.ID, id.Name
	ctx, cancel := context.WithTimeout(context.Background(), HandshakeTimeout)
	host, err := h.Store.GetHost(ctx, id.ID)
	cancel()
	serial := pki.SerialHex(chain[0].SerialNumber)
	switch {
	case errors.Is(err, store.ErrNotFound):
		h.refuse(conn, st, linkproto.CodeRevoked, "host %s (%s) was removed from this cluster: join it again with a new token", id.Name, id.ID)
		return
	case err != nil:
		h.refuse(conn, st, linkproto.CodeInternal, "cannot check this host now: %v", err)
		return
	case host.Revoked:
		h.refuse(conn, st, linkproto.CodeRevoked, "the certificate of host %s was revoked: join it again with a new token", host.Name)
		return
	case host.CertSerial != serial:
		// The agent's first link with a renewed certificate (from now on
		// the old one is refused), or a certificate replaced.
		ctx, cancel := context.WithTimeout(context.Background(), HandshakeTimeout)
		err := h.Store.PromoteHostCert(ctx, host.ID, serial)
		cancel()
		if errors.Is(err, store.ErrNotFound) {
			h.refuse(conn, st, linkproto.CodeRevoked, "this certificate of host %s (serial %s) was replaced (the host joined again, or its certificate was renewed): use the newer identity, or join again", host.Name, serial)
			return
		}
		if err != nil {
			h.refuse(conn, st, linkproto.CodeInternal, "cannot check this host's certificate now: %v", err)
			return
		}
		h.Logger.Info("host linked with its renewed certificate", "host", host.Name, "serial", serial)
	}
	ping := time.Duration(hello.Ping)
	if ping == 0 {
		ping = defaultPing
	}
	ping = min(max(ping, minPing), maxPing)
	if err := linkproto.WriteFrame(conn, linkproto.Welcome{Proto: linkproto.Version, Hub: h.Name, SiteID: h.SiteID, HostID: host.ID, Ping: linkproto.Duration(ping)}); err != nil {
		h.refuse(nil, st, "tls", "write welcome: %v", err)
		return
	}
	_ = conn.SetDeadline(time.Time{})
	sess, err := server(conn, ping)
	if err != nil {
		h.refuse(nil, st, "mux", "start multiplexing: %v", err)
		return
	}
	defer sess.Close()
	st.Kind, st.State, st.Hub, st.SiteID, st.Since = "leaf", "up", h.Name, h.SiteID, now
	st.Ping, st.Upstreams = linkproto.Duration(ping), hello.Upstreams
	l := &leaf{hub: h, sess: sess, status: st, watch: newWatch(conn, ping)}
	if l.watch != nil && ping >= minDoze && ping <= maxDoze {
		// Quiet: nothing open but the agent's report stream.
		l.watch.ws.doze(ping, func() bool { return sess.NumStreams() == 1 }, &h.ticks)
	}
	l.agentStreams = agentStreams{where: "host " + st.Peer, open: func() (net.Conn, error) { return sess.OpenStream() }}
	if !h.add(l) {
		return // the node is closing
	}
	h.Logger.Info("host linked", "host", host.Name, "id", host.ID, "remote", st.Address, "release", hello.Release)
	h.writeState(l, lobby.HostUp, nil)
	h.startSweep()
	for {
		s, err := sess.AcceptStream()
		if err != nil {
			break
		}
		go l.serveStream(s)
	}
	sess.Close()
	h.unlink(l)
}

// unlink unregisters a link that ended (or is being cut) and records the
// host down, unless a newer link of the host replaced it.
func (h *Hub) unlink(l *leaf) {
	if h.remove(l) {
		h.Logger.Info("host unlinked", "host", l.status.Peer, "id", l.status.HostID, "reason", l.lastError())
		h.dropReport(l)
		h.writeDown(l)
	}
}

// add registers a link, replacing (and closing) an older link of the same
// host: an agent that reconnects before its old link timed out wins.
func (h *Hub) add(l *leaf) bool {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return false
	}
	if h.leaves == nil {
		h.leaves = map[string]*leaf{}
	}
	old := h.leaves[l.status.HostID]
	h.leaves[l.status.HostID] = l
	if l.watch != nil {
		h.fresh = append(h.fresh, l)
	}
	h.mu.Unlock()
	if old != nil {
		old.setError("replaced by a newer link of the same host")
		go old.sess.Close()
	}
	h.Hosts.Set(l.status.HostID, l)
	return true
}

// remove unregisters l; false when a newer link of the host replaced it.
func (h *Hub) remove(l *leaf) bool {
	l.gone.Store(true)
	h.Hosts.Remove(l.status.HostID, l)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.leaves[l.status.HostID] != l {
		return false
	}
	delete(h.leaves, l.status.HostID)
	return true
}

// hostReport is what the store records of a report (nil: the link's
// state only).
func (l *leaf) hostReport(state lobby.HostState, rep *linkproto.Report) store.HostReport {
	r := store.HostReport{State: state, SiteID: l.hub.SiteID, Seen: l.hub.now(), Address: l.status.Address, AgentVersion: l.status.Release}
	if rep != nil {
		r.CPUPercent, r.MemTotal, r.MemUsed = rep.CPUPercent, rep.MemTotal, rep.MemUsed
		for _, d := range rep.Desktops {
			if d.Power == string(lobby.PowerRunning) {
				r.Running++
			}
		}
	}
	return r
}

// writeState records the host's link state (and a report, when given).
func (h *Hub) writeState(l *leaf, state lobby.HostState, rep *linkproto.Report) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := h.Store.SetHostReport(ctx, l.status.HostID, l.hostReport(state, rep))
	if err != nil && !errors.Is(err, store.ErrRevoked) {
		h.Logger.Warn("record host state", "host", l.status.Peer, "err", err)
	}
	return err
}

// writeDown records the host down, unless it has linked to another node
// meanwhile (an agent whose hub stops moves on at once).
func (h *Hub) writeDown(l *leaf) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := h.Store.SetHostDown(ctx, l.status.HostID, h.SiteID, h.now()); err != nil && !errors.Is(err, store.ErrNotFound) {
		h.Logger.Warn("record host down", "host", l.status.Peer, "err", err)
	}
}

func (l *leaf) setError(msg string) {
	l.errMu.Lock()
	l.err = msg
	l.errMu.Unlock()
}

func (l *leaf) lastError() string {
	l.errMu.Lock()
	defer l.errMu.Unlock()
	return l.err
}

// serveStream serves a stream the leaf opened: its reports.
func (l *leaf) serveStream(s net.Conn) {
	defer s.Close()
	open, err := readOpen(s) // a stream that never says what it is ends
	if err != nil {
		return
	}
	switch open.Type {
	case linkproto.StreamReport:
	case linkproto.StreamRenew:
		_ = linkproto.WriteFrame(s, l.renew(open.CSR))
		return
	default:
		l.hub.Logger.Warn("unexpected stream from a leaf", "host", l.status.Peer, "type", open.Type)
		return
	}
	for {
		var rep linkproto.Report
		if err := linkproto.ReadFrame(s, &rep); err != nil {
			return
		}
		l.apply(&rep)
	}
}

// renew issues the host a new certificate for the key in csr, with the
// same identity; it becomes the host's once the agent links with it.
func (l *leaf) renew(csr []byte) linkproto.Result {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h, now := l.hub, l.hub.now()
	id := pki.Identity{Kind: pki.KindHost, ID: l.status.HostID, Name: l.status.Peer}
	der, serial, err := h.CA.SignCSR(csr, id, now, pki.HostLifetime)
	if err != nil {
		return linkproto.Result{Error: &linkproto.Error{Code: string(lobby.KindInvalid), Message: err.Error()}}
	}
	err = h.Store.InTx(ctx, func(q store.Queries) error {
		if err := q.SetHostPendingCert(ctx, id.ID, serial); err != nil {
			return err
		}
		return q.AppendAudit(ctx, &lobby.AuditEvent{At: now, Actor: "host:" + id.Name, Action: "host.renew", Target: id.ID,
			Detail: fmt.Sprintf("host %s renewed its link certificate: %s, valid until %s", id.Name, serial, now.Add(pki.HostLifetime).UTC().Format(time.DateOnly)),
			Remote: l.status.Address})
	})
	if err != nil {
		return linkproto.Result{Error: ErrorToWire(err)}
	}
	h.Logger.Info("host certificate renewed", "host", id.Name, "serial", serial)
	return linkproto.Result{Cert: der}
}

// apply reconciles the store with a report.
func (l *leaf) apply(rep *linkproto.Report) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ds := make([]provider.Desktop, len(rep.Desktops))
	for i, d := range rep.Desktops {
		ds[i] = fromWire(d)
	}
	// A report whose desktops are those reconciled last time needs no
	// reconciling: every change the node makes goes through a command,
	// after which the agent reports. Now and then it is reconciled anyway,
	// against changes made to the store by hand.
	now := l.hub.now()
	if !slices.Equal(rep.Desktops, l.reconciled) || now.Sub(l.reconciledAt) >= reconcileEvery {
		if err := hostconn.Reconcile(ctx, l.hub.Store, l.status.HostID, ds, now); err != nil {
			l.hub.Logger.Warn("reconcile host report", "host", l.status.Peer, "err", err)
			l.setError("reconcile: " + err.Error())
			l.reconciled = nil
		} else {
			l.reconciled, l.reconciledAt = rep.Desktops, now
		}
	}
	// Written with the other hosts' at the next flush, where a host
	// revoked through another node is cut.
	l.hub.queueReport(l, rep)
}

// Links lists this node's links and the latest refusals, by peer name.
func (h *Hub) Links() []Status {
	h.mu.Lock()
	out := make([]Status, 0, len(h.leaves)+len(h.refused))
	for _, l := range h.leaves {
		st := l.status
		if l.watch != nil {
			st.RTTMillis = float64(l.watch.RTT()) / 1e6
		}
		st.LastError = l.lastError()
		out = append(out, st)
	}
	out = append(out, h.refused...)
	h.mu.Unlock()
	out = append(out, h.peerLinks()...)
	// Sorted by index: a Status is large, and thousands of them moved
	// about by the sort cost more than the rest of the list.
	idx := make([]int, len(out))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(i, j int) bool {
		a, b := &out[idx[i]], &out[idx[j]]
		if a.State != b.State {
			return a.State == "up"
		}
		if a.State == "refused" {
			return a.Since.After(b.Since)
		}
		return a.Peer < b.Peer
	})
	sorted := make([]Status, len(out))
	for i, k := range idx {
		sorted[i] = out[k]
	}
	return sorted
}

// AgentLinks lists the agents linked to this node, in no order, for the
// node's health record: it is taken every few seconds, and building and
// sorting Links' full rows for thousands of links would cost more than
// the record.
func (h *Hub) AgentLinks() []store.AgentLink {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]store.AgentLink, 0, len(h.leaves))
	for _, l := range h.leaves {
		a := store.AgentLink{HostID: l.status.HostID, Host: l.status.Peer, Since: l.status.Since}
		if l.watch != nil {
			a.RTT = l.watch.RTT()
		}
		out = append(out, a)
	}
	return out
}

// Linked reports whether a host has a link to this node.
func (h *Hub) Linked(hostID string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.leaves[hostID] != nil
}

// Cut ends a host's link at once (its certificate was revoked, or the
// host removed), here and on the other nodes, and reports whether it had
// one here.
func (h *Hub) Cut(hostID, why string) bool {
	h.cutPeers(hostID, why)
	return h.cutLocal(hostID, why)
}

func (h *Hub) cutLocal(hostID, why string) bool {
	h.mu.Lock()
	l := h.leaves[hostID]
	h.mu.Unlock()
	if l == nil {
		return false
	}
	l.setError(why)
	h.unlink(l) // at once: closing waits for the agent's goodbye
	go l.sess.Close()
	return true
}

// reconcileEvery is how often a report is reconciled with the store even
// when the host's desktops did not change.
const reconcileEvery = 5 * time.Minute

// Close ends every link (the node is stopping) and waits for them.
// Http.Server.Shutdown does not close upgraded connections, so the node
// calls this.
func (h *Hub) Close() {
	h.mu.Lock()
	h.closed = true
	if h.sweepStop != nil {
		close(h.sweepStop)
		h.sweepStop = nil
	}
	h.ticks.fire(time.Time{}, true)
	ls := make([]*leaf, 0, len(h.leaves))
	for _, l := range h.leaves {
		ls = append(ls, l)
	}
	h.mu.Unlock()
	for _, l := range ls {
		l.setError("the node is stopping")
		go l.sess.Close() // in parallel: each waits up to a second for its agent's goodbye
	}
	h.closePeers()
	h.wg.Wait()
	h.mu.Lock()
	flushed := h.flushDone
	h.mu.Unlock()
	if flushed != nil {
		<-flushed // the last reports written, before the store closes
	}
}

func fromWire(d linkproto.Desktop) provider.Desktop {
	return provider.Desktop{Name: d.Name, Power: lobby.PowerState(d.Power), ConsoleKind: d.ConsoleKind, ConsolePort: d.ConsolePort, Template: d.Template}
}

// ToWire converts a provider's desktop for a report or a result.
func ToWire(d provider.Desktop) linkproto.Desktop {
	return linkproto.Desktop{Name: d.Name, Power: string(d.Power), ConsoleKind: d.ConsoleKind, ConsolePort: d.ConsolePort, Template: d.Template}
}

// ErrorToWire carries an error's kind across the link.
func ErrorToWire(err error) *linkproto.Error {
	if err == nil {
		return nil
	}
	if errors.Is(err, provider.ErrNotFound) {
		return &linkproto.Error{Code: string(lobby.KindNotFound), Message: err.Error()}
	}
	return &linkproto.Error{Code: string(lobby.ErrorKind(err)), Message: err.Error()}
}

// ErrorFromWire rebuilds an error from across the link; a not_found
// error matches provider.ErrNotFound.
func ErrorFromWire(e *linkproto.Error) error {
	err := lobby.Errorf(lobby.Kind(e.Code), "%s", e.Message)
	if e.Code == string(lobby.KindNotFound) {
		return fmt.Errorf("%w: %w", provider.ErrNotFound, err)
	}
	return err
}
