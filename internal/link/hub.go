package link

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"lobby/internal/hostconn"
	"lobby/internal/linkproto"
	"lobby/internal/lobby"
	"lobby/internal/pki"
	"lobby/internal/store"
)

// Hub is a node's side of its links: it admits agents with join tokens,
// accepts their links, registers each linked host in Hosts (so jobs and
// the gateway reach it), applies their reports to the store, keeps node
// links to the other nodes (RunPeers) to reach the hosts linked to them
// (Route), and lists the links.
type Hub struct {
	Store   store.Store
	CA      *pki.CA
	Cert    tls.Certificate // this node's link certificate, from CA
	Name    string          // this node's name, in Cert
	SiteID  int
	Hosts   *hostconn.Registry
	Release string
	Logger  *slog.Logger
	Now     func() time.Time
	// NodePing is how often node links ping (default 1 s); NodeStale is
	// how long a node's heartbeat may stand still before this node stops
	// linking to it (default 10 s, as cluster.DefaultStaleAfter).
	NodePing, NodeStale time.Duration

	nl      nodeLinks
	mu      sync.Mutex
	leaves  map[string]*leaf // by host ID
	refused []Status         // the latest refusals, oldest first
	closed  bool
	wg      sync.WaitGroup

	sweepOnce sync.Once
	sweepStop chan struct{}
	fresh     []*leaf       // links added since the last sweep
	flushDone chan struct{} // closed when the report writer stopped
	repMu     sync.Mutex
	reports   map[string]report // by host ID, until the next flush (reports.go)
	writing   map[string]report // the batch a flush is writing, nil when none
	written   chan struct{}     // closed when that batch is written
	ticks     ticks             // the sweeper's, for dozing readers (doze.go)
}

// maxRefused is how many refusals the link list remembers.
const maxRefused = 50

// Status is one row of the link list.
type Status struct {
	Kind string `json:"kind"` // "leaf": an agent linked to this node; "node": a link to another node
	// State is "up", or "refused" for a failed attempt; a node link not
	// up is "connecting" (this node dials it) or "waiting" (it dials
	// this node).
	State      string                 `json:"state"`
	Hub        string                 `json:"hub"` // this node's name
	SiteID     int                    `json:"site_id"`
	Peer       string                 `json:"peer"`                   // the host's or the other node's name
	PeerSiteID int                    `json:"peer_site_id,omitempty"` // the other node's site ID
	HostID     string                 `json:"host_id,omitempty"`
	Address    string                 `json:"address"`
	Since      time.Time              `json:"since"` // up since, or when refused
	RTTMillis  float64                `json:"rtt_ms"`
	Ping       linkproto.Duration     `json:"ping,omitempty"`
	Proto      int                    `json:"proto,omitempty"`
	Release    string                 `json:"release,omitempty"`
	Upstreams  []linkproto.HubSetting `json:"upstreams,omitempty"`
	LastError  string                 `json:"last_error,omitempty"`
}

// Ping intervals a leaf may ask for.
const (
	minPing     = 200 * time.Millisecond
	maxPing     = 5 * time.Minute
	defaultPing = 5 * time.Second
)

func (h *Hub) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

// ServeHTTP accepts one link at linkproto.Path and serves it until it
// ends.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, err := Accept(w, r)
	if err != nil {
		h.Logger.Debug("link upgrade refused", "remote", r.RemoteAddr, "err", err)
		return
	}
	// Counted under the lock that Close takes before it waits, so that no
	// link is added to a wait under way (a race) or after it (a leak).
	h.mu.Lock()
	closed := h.closed
	if !closed {
		h.wg.Add(1)
	}
	h.mu.Unlock()
	if closed {
		raw.Close()
		return
	}
	defer h.wg.Done()
	defer raw.Close()
	conn := tls.Server(raw, ServerTLS(h.Cert))
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(HandshakeTimeout))
	if err := conn.HandshakeContext(r.Context()); err != nil {
		h.refuse(nil, Status{Address: r.RemoteAddr}, "tls", "the TLS handshake failed: %v", err)
		return
	}
	var hello linkproto.Hello
	if err := linkproto.ReadFrame(conn, &hello); err != nil {
		h.refuse(nil, Status{Address: r.RemoteAddr}, "tls", "no hello from the peer: %v", err)
		return
	}
	st := Status{Address: r.RemoteAddr, Peer: hello.Name, Proto: hello.Proto, Release: hello.Release}
	if hello.Proto < linkproto.MinVersion || hello.Proto > linkproto.Version {
		h.refuse(conn, st, linkproto.CodeIncompatible,
			"the agent speaks link protocol version %d and this node (release %s) speaks versions %d to %d: run agents and nodes of compatible releases",
			hello.Proto, h.Release, linkproto.MinVersion, linkproto.Version)
		return
	}
	switch hello.Kind {
	case linkproto.KindJoin:
		h.join(r.Context(), conn, hello, st)
	case linkproto.KindLeaf:
		h.serveLeaf(conn, hello, st)
	case linkproto.KindNode:
		h.acceptNode(conn, hello, st)
	default:
		h.refuse(conn, st, linkproto.CodeIncompatible, "unknown link kind %q", hello.Kind)
	}
}

// refuse answers a Welcome with an error (when the link got that far),
// logs it, and remembers it for the link list.
func (h *Hub) refuse(conn net.Conn, st Status, code, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if conn != nil {
		_ = linkproto.WriteFrame(conn, linkproto.Welcome{Proto: linkproto.Version, Hub: h.Name, SiteID: h.SiteID, Error: &linkproto.Error{Code: code, Message: msg}})
	}
	h.Logger.Warn("link refused", "remote", st.Address, "peer", st.Peer, "code", code, "reason", msg)
	if st.Kind == "" {
		st.Kind = "leaf"
	}
	st.State, st.Hub, st.SiteID, st.Since, st.LastError = "refused", h.Name, h.SiteID, h.now(), msg
	h.mu.Lock()
	defer h.mu.Unlock()
	h.refused = append(h.refused, st)
	if len(h.refused) > maxRefused {
		h.refused = h.refused[len(h.refused)-maxRefused:]
	}
}

var (
	errUsedUp    = errors.New("join token used up")
	errNameTaken = errors.New("host name taken")
)

// join redeems a join token: it checks the token, records the new host
// and issues its certificate, all or nothing.
func (h *Hub) join(ctx context.Context, conn net.Conn, hello linkproto.Hello, st Status) {
	now := h.now()
	t, err := h.Store.GetJoinToken(ctx, hello.TokenID)
	sum := sha256.Sum256([]byte(hello.TokenSecret))
	switch {
	case errors.Is(err, store.ErrNotFound), err == nil && subtle.ConstantTimeCompare([]byte(t.Hash), []byte(hex.EncodeToString(sum[:]))) != 1:
		h.refuse(conn, st, linkproto.CodeBadToken, "the join token is not valid here: it is unknown to this cluster or mistyped; create one with `lobby admin token create`")
		return
	case err != nil:
		h.refuse(conn, st, linkproto.CodeInternal, "cannot check the join token now: %v", err)
		return
	case t.Revoked:
		h.refuse(conn, st, linkproto.CodeBadToken, "the join token %s was revoked: create a new one with `lobby admin token create`", t.ID)
		return
	case !now.Before(t.Expires):
		h.refuse(conn, st, linkproto.CodeExpiredToken, "the join token %s expired at %s: create a new one with `lobby admin token create`", t.ID, t.Expires.UTC().Format(time.RFC3339))
		return
	case t.Uses >= t.MaxUses:
		h.refuse(conn, st, linkproto.CodeBadToken, "the join token %s was already used %d time(s), all it allows: create a new one with `lobby admin token create --uses N`", t.ID, t.Uses)
		return
	}
	if err := lobby.ValidName("host", hello.Name); err != nil {
		h.refuse(conn, st, "invalid", "%s: give the agent another --name", lobby.ErrorMessage(err))
		return
	}
	host := &lobby.Host{ID: lobby.NewID("hst"), Name: hello.Name, Provider: hello.Provider, State: lobby.HostDown, SiteID: h.SiteID, LastSeen: now, Created: now}
	der, serial, err := h.CA.SignCSR(hello.CSR, pki.Identity{Kind: pki.KindHost, ID: host.ID, Name: host.Name}, now, pki.HostLifetime)
	if err != nil {
		h.refuse(conn, st, "invalid", "%v", err)
		return
	}
	err = h.Store.InTx(ctx, func(q store.Queries) error {
		if err := q.UseJoinToken(ctx, t.ID, now); errors.Is(err, store.ErrConflict) {
			return errUsedUp
		} else if err != nil {
			return err
		}
		if err := q.CreateHost(ctx, host); errors.Is(err, store.ErrConflict) {
			return errNameTaken
		} else if err != nil {
			return err
		}
		if err := q.SetHostCert(ctx, host.ID, serial); err != nil {
			return err
		}
		return q.AppendAudit(ctx, &lobby.AuditEvent{At: now, Actor: t.CreatedBy, Action: "host.join", Target: host.ID,
			Detail: fmt.Sprintf("host %s joined with token %s (certificate %s)", host.Name, t.ID, serial), Remote: st.Address})
	})
	switch {
	case errors.Is(err, errNameTaken):
		h.refuse(conn, st, linkproto.CodeNameTaken, "a host named %q has already joined: give this agent another --name, or remove the old host first (lobby hosts remove %s)", host.Name, host.Name)
		return
	case errors.Is(err, errUsedUp):
		h.refuse(conn, st, linkproto.CodeBadToken, "the join token %s was used up by another agent just now: create a new one", t.ID)
		return
	case err != nil:
		h.refuse(conn, st, linkproto.CodeInternal, "cannot record the new host now: %v", err)
		return
	}
	h.Logger.Info("host joined", "host", host.Name, "id", host.ID, "token", t.ID, "remote", st.Address)
	_ = linkproto.WriteFrame(conn, linkproto.Welcome{Proto: linkproto.Version, Hub: h.Name, SiteID: h.SiteID, HostID: host.ID, Cert: der})
}
