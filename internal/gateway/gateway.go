// Package gateway relays a browser's WebSocket to a desktop's console.
// The path is browser ⇄ node (WebSocket) ⇄ host connection ⇄ console. A
// single-use ticket, bound to a user and a desktop when it was issued,
// authorizes the upgrade (a browser cannot put a bearer header on a
// WebSocket). The console stream arrives already authenticated by the
// host's agent, so the gateway offers the viewer RFB security type None and
// the console secret never leaves the host.
package gateway

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"

	"lobby/internal/hostconn"
	"lobby/internal/httpjson"
	"lobby/internal/link"
	"lobby/internal/lobby"
	"lobby/internal/rfb"
	"lobby/internal/store"
)

// Redeemer uses up a console ticket (auth.Service).
type Redeemer interface {
	RedeemTicket(ctx context.Context, secret string) (*store.Ticket, error)
}

// Gateway serves GET /gateway/vnc?ticket=T.
type Gateway struct {
	Tickets Redeemer
	Store   store.Store
	Hosts   *hostconn.Registry
	Logger  *slog.Logger
	Now     func() time.Time
	// OriginPatterns are extra hosts allowed to open the WebSocket from a
	// browser; the node's own host is always allowed.
	OriginPatterns []string

	mu       sync.Mutex
	sessions map[string]map[*session]struct{} // by desktop ID
}

type session struct {
	cancel     context.CancelFunc
	assignment string // the assignment it was opened under
}

func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	secret := r.URL.Query().Get("ticket")
	if secret == "" {
		httpjson.Error(w, r, g.Logger, lobby.Errorf(lobby.KindInvalid, "the ticket parameter is missing: get a console URL from POST /api/v1/connect"))
		return
	}
	t, err := g.Tickets.RedeemTicket(ctx, secret)
	if err != nil {
		httpjson.Error(w, r, g.Logger, err)
		return
	}
	d, a, err := g.held(ctx, t)
	if err != nil {
		httpjson.Error(w, r, g.Logger, err)
		return
	}
	hc, err := g.Hosts.Get(d.HostID)
	if err != nil {
		httpjson.Error(w, r, g.Logger, err)
		return
	}
	console, err := hc.DialConsole(ctx, d.Name)
	if err != nil {
		g.Logger.Warn("dial console", "desktop", d.Name, "err", err)
		httpjson.Error(w, r, g.Logger, lobby.Errorf(lobby.KindUnavailable, "cannot reach the console of desktop %s: try again in a moment", d.Name))
		return
	}
	defer console.Close()
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{"binary"}, OriginPatterns: g.OriginPatterns})
	if err != nil {
		return // Accept has answered the client
	}
	sctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	viewer := websocket.NetConn(sctx, ws, websocket.MessageBinary)
	defer viewer.Close()
	if err := rfb.ServeNone(viewer); err != nil {
		g.Logger.Info("viewer handshake failed", "desktop", d.Name, "err", err)
		return
	}
	s := &session{cancel: cancel, assignment: a.ID}
	g.open(ctx, d, a, s)
	defer g.close(d, a, s)
	link.Relay(sctx, viewer, console)
}

// held checks that the ticket's user still holds the desktop.
func (g *Gateway) held(ctx context.Context, t *store.Ticket) (*lobby.Desktop, *lobby.Assignment, error) {
	d, err := g.Store.GetDesktop(ctx, t.DesktopID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, lobby.Errorf(lobby.KindNotFound, "the desktop of this ticket no longer exists")
	}
	if err != nil {
		return nil, nil, err
	}
	as, err := g.Store.ListAssignments(ctx, store.AssignmentFilter{DesktopID: d.ID})
	if err != nil {
		return nil, nil, err
	}
	if len(as) == 0 || as[0].UserID != t.UserID {
		return nil, nil, lobby.Errorf(lobby.KindForbidden, "desktop %s is no longer assigned to you: connect again", d.Name)
	}
	if d.Power != lobby.PowerRunning {
		return nil, nil, lobby.Errorf(lobby.KindUnavailable, "desktop %s is %s, not running: connect again to start it", d.Name, d.Power)
	}
	return d, &as[0], nil
}

// open registers a session; older sessions of the same desktop are ended
// (a viewer that reconnects after a network blip replaces its old one).
func (g *Gateway) open(ctx context.Context, d *lobby.Desktop, a *lobby.Assignment, s *session) {
	g.mu.Lock()
	if g.sessions == nil {
		g.sessions = map[string]map[*session]struct{}{}
	}
	old := g.sessions[d.ID]
	g.sessions[d.ID] = map[*session]struct{}{s: {}}
	for o := range old {
		g.sessions[d.ID][o] = struct{}{}
		o.cancel()
	}
	g.mu.Unlock()
	now := g.Now()
	if err := g.Store.SetConnected(ctx, a.ID, true, now); err != nil {
		g.Logger.Warn("record connect", "desktop", d.Name, "err", err)
	}
	u, _ := g.Store.GetUser(ctx, a.UserID)
	actor := a.UserID
	if u != nil {
		actor = u.Username
	}
	_ = g.Store.AppendAudit(ctx, &lobby.AuditEvent{At: now, Actor: actor, Action: "desktop.connect", Target: d.ID, Detail: "console session to " + d.Name})
}

// close unregisters a session; the last one out marks the assignment
// disconnected, which starts the release plan's disconnect timer.
func (g *Gateway) close(d *lobby.Desktop, a *lobby.Assignment, s *session) {
	g.mu.Lock()
	delete(g.sessions[d.ID], s)
	last := len(g.sessions[d.ID]) == 0
	if last {
		delete(g.sessions, d.ID)
	}
	g.mu.Unlock()
	if !last {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := g.Store.SetConnected(ctx, a.ID, false, g.Now())
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		g.Logger.Warn("record disconnect", "desktop", d.Name, "err", err)
	}
}

// End closes every live session of a desktop and returns how many.
func (g *Gateway) End(desktopID string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	for s := range g.sessions[desktopID] {
		s.cancel()
	}
	return len(g.sessions[desktopID])
}

// Fence ends, every interval until ctx ends, the sessions whose
// assignment is gone. In a cluster a desktop may be released through
// another node, whose End reaches only its own viewers; without this a
// viewer here would keep the console of a desktop handed to someone else.
func (g *Gateway) Fence(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		g.fence(ctx)
	}
}

// fence ends the sessions whose assignment is gone, asking the store
// about all of them in one query.
func (g *Gateway) fence(ctx context.Context) {
	byAssignment := map[string][]*session{}
	g.mu.Lock()
	for _, ss := range g.sessions {
		for s := range ss {
			byAssignment[s.assignment] = append(byAssignment[s.assignment], s)
		}
	}
	g.mu.Unlock()
	if len(byAssignment) == 0 {
		return
	}
	ids := make([]string, 0, len(byAssignment))
	for id := range byAssignment {
		ids = append(ids, id)
	}
	exist, err := g.Store.ExistingAssignments(ctx, ids)
	if err != nil {
		return // the store is unreachable: keep the sessions, ask again next time
	}
	for id, ss := range byAssignment {
		if exist[id] {
			continue
		}
		g.Logger.Info("console ended: its desktop was released through another node", "assignment", id, "sessions", len(ss))
		for _, s := range ss {
			s.cancel()
		}
	}
}

// Active returns the number of live sessions.
func (g *Gateway) Active() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for _, ss := range g.sessions {
		n += len(ss)
	}
	return n
}
