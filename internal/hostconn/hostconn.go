// Package hostconn keeps the node's view of the host agents: a registry
// from host ID to a Conn that carries commands and console streams,
// whether the agent runs in-process (lobby dev), across a link to this
// node, or across a link to another node (through a Router).
package hostconn

import (
	"context"
	"net"
	"sync"

	"lobby/internal/lobby"
	"lobby/internal/provider"
)

// Conn is the node's handle on one host's agent.
type Conn interface {
	// Do runs one provider command on the host.
	Do(ctx context.Context, cmd Command) (provider.Desktop, error)
	// List reports every desktop on the host.
	List(ctx context.Context) ([]provider.Desktop, error)
	// DialConsole returns an authenticated console stream (see
	// provider.Provider.DialConsole).
	DialConsole(ctx context.Context, desktop string) (net.Conn, error)
}

// Op is a provider operation.
type Op string

// Operations.
const (
	OpCreate  Op = "create"
	OpStart   Op = "start"
	OpStop    Op = "stop"
	OpSuspend Op = "suspend"
	OpResume  Op = "resume"
	OpDelete  Op = "delete"
	OpGet     Op = "get"
)

// Command is one operation on one desktop. ID lets an agent recognise a
// command it has already run.
type Command struct {
	ID       string `json:"id"`
	Op       Op     `json:"op"`
	Desktop  string `json:"desktop"`
	Template string `json:"template,omitempty"`
}

// Router reaches the hosts whose agents are linked to other nodes
// (link.Hub, over its node links).
type Router interface {
	// Route returns a connection to a host not linked to this node, or
	// an error (lobby.KindUnavailable, KindNotFound) saying why there is
	// none.
	Route(ctx context.Context, hostID string) (Conn, error)
}

// Registry maps host IDs to their live connections.
type Registry struct {
	mu     sync.RWMutex
	conns  map[string]Conn
	router Router
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{conns: map[string]Conn{}} }

// Set records the connection of a host.
func (r *Registry) Set(hostID string, c Conn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.conns[hostID] = c
}

// Remove forgets a host's connection if it is still c.
func (r *Registry) Remove(hostID string, c Conn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.conns[hostID] == c {
		delete(r.conns, hostID)
	}
}

// SetRouter makes Get fall back to rt for hosts not linked here.
func (r *Registry) SetRouter(rt Router) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.router = rt
}

// Get returns the connection of a host. A host not linked here is
// reached through the Router, looked up again at each call (so that a
// host moving between nodes is followed); without a Router, Get returns
// an Unavailable error.
func (r *Registry) Get(hostID string) (Conn, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if c, ok := r.conns[hostID]; ok {
		return c, nil
	}
	if r.router != nil {
		return routed{r: r.router, hostID: hostID}, nil
	}
	return nil, lobby.Errorf(lobby.KindUnavailable, "host %s is not linked to this node: check that its agent is running", hostID)
}

// Linked returns the connection of a host linked to this node (or run
// in-process), without the Router.
func (r *Registry) Linked(hostID string) (Conn, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	c, ok := r.conns[hostID]
	return c, ok
}

// IDs lists the linked hosts.
func (r *Registry) IDs() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	ids := make([]string, 0, len(r.conns))
	for id := range r.conns {
		ids = append(ids, id)
	}
	return ids
}

// routed reaches a host through a Router at each call.
type routed struct {
	r      Router
	hostID string
}

func (c routed) Do(ctx context.Context, cmd Command) (provider.Desktop, error) {
	conn, err := c.r.Route(ctx, c.hostID)
	if err != nil {
		return provider.Desktop{}, err
	}
	return conn.Do(ctx, cmd)
}

func (c routed) List(ctx context.Context) ([]provider.Desktop, error) {
	conn, err := c.r.Route(ctx, c.hostID)
	if err != nil {
		return nil, err
	}
	return conn.List(ctx)
}

func (c routed) DialConsole(ctx context.Context, desktop string) (net.Conn, error) {
	conn, err := c.r.Route(ctx, c.hostID)
	if err != nil {
		return nil, err
	}
	return conn.DialConsole(ctx, desktop)
}

// Local adapts an in-process provider to a Conn.
type Local struct{ P provider.Provider }

// Do implements Conn.
func (l Local) Do(ctx context.Context, cmd Command) (provider.Desktop, error) {
	switch cmd.Op {
	case OpCreate:
		return l.P.Create(ctx, provider.Spec{Name: cmd.Desktop, Template: cmd.Template})
	case OpStart:
		return l.P.Start(ctx, cmd.Desktop)
	case OpResume:
		return l.P.Resume(ctx, cmd.Desktop)
	case OpStop:
		return provider.Desktop{Name: cmd.Desktop, Power: lobby.PowerStopped}, l.P.Stop(ctx, cmd.Desktop)
	case OpSuspend:
		if err := l.P.Suspend(ctx, cmd.Desktop); err != nil {
			return provider.Desktop{}, err
		}
		return l.P.Get(ctx, cmd.Desktop)
	case OpDelete:
		return provider.Desktop{Name: cmd.Desktop}, l.P.Delete(ctx, cmd.Desktop)
	case OpGet:
		return l.P.Get(ctx, cmd.Desktop)
	}
	return provider.Desktop{}, lobby.Errorf(lobby.KindInvalid, "unknown host operation %q", cmd.Op)
}

// List implements Conn.
func (l Local) List(ctx context.Context) ([]provider.Desktop, error) { return l.P.List(ctx) }

// DialConsole implements Conn.
func (l Local) DialConsole(ctx context.Context, desktop string) (net.Conn, error) {
	return l.P.DialConsole(ctx, desktop)
}
