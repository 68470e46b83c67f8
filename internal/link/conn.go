package link

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"lobby/internal/hostconn"
	"lobby/internal/linkproto"
	"lobby/internal/lobby"
	"lobby/internal/provider"
)

// agentStreams carries hostconn.Conn's operations over streams to one
// host's agent: streams of the agent's own link to this node (a leaf), or
// streams of a node link through the node the host is linked to.
type agentStreams struct {
	where string // "host NAME", or "host NAME through node PEER", for messages
	// open returns a new stream to the agent, ready for its Open frame.
	open func() (net.Conn, error)
}

// stream opens a stream to the agent and sends open; ctx bounds the whole
// exchange that follows (until the returned stop is called).
func (a agentStreams) stream(ctx context.Context, open linkproto.Open) (s net.Conn, stop func() bool, err error) {
	s, err = a.open()
	if err != nil {
		return nil, nil, lobby.Errorf(lobby.KindUnavailable, "the link to %s is down: %v", a.where, err)
	}
	stop = context.AfterFunc(ctx, func() { _ = s.SetDeadline(time.Now()) })
	if err := linkproto.WriteFrame(s, open); err != nil {
		stop()
		s.Close()
		return nil, nil, lobby.Errorf(lobby.KindUnavailable, "the link to %s dropped: %v", a.where, err)
	}
	return s, stop, nil
}

// dropped turns a failed read of the agent's answer into the error to
// return: the peer node's refusal to route (it no longer has the host),
// the caller's own deadline, or the link's loss.
func (a agentStreams) dropped(ctx context.Context, err error, what string) error {
	var re *routeError
	switch {
	case errors.As(err, &re):
		return ErrorFromWire(re.e)
	case ctx.Err() != nil:
		return ctx.Err()
	}
	return lobby.Errorf(lobby.KindUnavailable, "the link to %s dropped%s: %v", a.where, what, err)
}

// Do implements hostconn.Conn: the command runs on the agent, which
// remembers (ID, Op) so that a retry after a dropped link is answered
// without running it twice. A relaying node passes the ID on unchanged.
func (a agentStreams) Do(ctx context.Context, cmd hostconn.Command) (provider.Desktop, error) {
	s, stop, err := a.stream(ctx, linkproto.Open{Type: linkproto.StreamCommand, Command: &linkproto.Command{
		ID: cmd.ID, Op: string(cmd.Op), Desktop: cmd.Desktop, Template: cmd.Template}})
	if err != nil {
		return provider.Desktop{}, err
	}
	defer s.Close()
	defer stop()
	var res linkproto.Result
	if err := linkproto.ReadFrame(s, &res); err != nil {
		return provider.Desktop{}, a.dropped(ctx, err, " before it answered command "+cmd.ID+" ("+string(cmd.Op)+" "+cmd.Desktop+"): it is retried with the same ID")
	}
	if res.Error != nil {
		return provider.Desktop{}, ErrorFromWire(res.Error)
	}
	if res.Desktop == nil {
		return provider.Desktop{Name: cmd.Desktop}, nil
	}
	return fromWire(*res.Desktop), nil
}

// List implements hostconn.Conn.
func (a agentStreams) List(ctx context.Context) ([]provider.Desktop, error) {
	s, stop, err := a.stream(ctx, linkproto.Open{Type: linkproto.StreamList})
	if err != nil {
		return nil, err
	}
	defer s.Close()
	defer stop()
	var rep linkproto.Report
	if err := linkproto.ReadFrame(s, &rep); err != nil {
		return nil, a.dropped(ctx, err, "")
	}
	ds := make([]provider.Desktop, len(rep.Desktops))
	for i, d := range rep.Desktops {
		ds[i] = fromWire(d)
	}
	return ds, nil
}

// DialConsole implements hostconn.Conn: a stream to the agent, which
// dials the console on its loopback and authenticates to it.
func (a agentStreams) DialConsole(ctx context.Context, desktop string) (net.Conn, error) {
	s, stop, err := a.stream(ctx, linkproto.Open{Type: linkproto.StreamConsole, Desktop: desktop})
	if err != nil {
		return nil, err
	}
	var res linkproto.Result
	err = linkproto.ReadFrame(s, &res)
	if !stop() || err != nil {
		s.Close()
		if err == nil {
			err = ctx.Err()
		}
		return nil, a.dropped(ctx, err, "")
	}
	if res.Error != nil {
		s.Close()
		return nil, ErrorFromWire(res.Error)
	}
	return s, nil
}

// routeError is a peer node's answer that it cannot reach the host.
type routeError struct{ e *linkproto.Error }

func (r *routeError) Error() string { return r.e.Message }

// routed is a stream through a peer node: the peer's routing answer comes
// first, and is read (once) before anything of the agent's.
type routed struct {
	net.Conn
	read bool
	err  error
}

func (r *routed) Read(b []byte) (int, error) {
	if !r.read {
		r.read = true
		var res linkproto.Result
		if err := linkproto.ReadFrame(r.Conn, &res); err != nil {
			r.err = err
		} else if res.Error != nil {
			r.err = &routeError{res.Error}
		}
	}
	if r.err != nil {
		return 0, r.err
	}
	return r.Conn.Read(b)
}

// LeafServer answers the streams a hub opens to a host's agent
// (linkproto.StreamCommand, StreamList, StreamConsole): the agent itself,
// or a node that serves them on the connection of a host linked to it.
type LeafServer interface {
	// Command runs a command; false when ctx ended before its result (the
	// stream ends unanswered).
	Command(ctx context.Context, cmd linkproto.Command) (linkproto.Result, bool)
	// List reports the host's desktops; after an error the stream ends
	// unanswered (the hub sees the link drop).
	List(ctx context.Context) (linkproto.Report, error)
	// DialConsole returns an authenticated console stream.
	DialConsole(ctx context.Context, desktop string) (net.Conn, error)
}

// ServeLeafStream serves one stream a hub opened to a leaf with srv, until
// it ends or ctx does; the caller closes s. who names the leaf in the
// answer to a stream type it does not know ("this agent", "node NAME").
func ServeLeafStream(ctx context.Context, s net.Conn, srv LeafServer, who string) {
	open, err := readOpen(s)
	if err != nil {
		return
	}
	switch open.Type {
	case linkproto.StreamCommand:
		if open.Command == nil {
			_ = linkproto.WriteFrame(s, linkproto.Result{Error: &linkproto.Error{Code: string(lobby.KindInvalid), Message: "command stream without a command"}})
			return
		}
		if res, ok := srv.Command(ctx, *open.Command); ok {
			_ = linkproto.WriteFrame(s, res)
		}
	case linkproto.StreamList:
		rep, err := srv.List(ctx)
		if err != nil {
			return
		}
		_ = linkproto.WriteFrame(s, rep)
	case linkproto.StreamConsole:
		cs, err := srv.DialConsole(ctx, open.Desktop)
		if err != nil {
			_ = linkproto.WriteFrame(s, linkproto.Result{Error: ErrorToWire(err)})
			return
		}
		defer cs.Close()
		if err := linkproto.WriteFrame(s, linkproto.Result{}); err != nil {
			return
		}
		Relay(ctx, s, cs)
	default:
		_ = linkproto.WriteFrame(s, linkproto.Result{Error: &linkproto.Error{Code: string(lobby.KindInvalid),
			Message: fmt.Sprintf("%s (link protocol %d) has no stream type %q", who, linkproto.Version, open.Type)}})
	}
}

// RunCommand runs a command from the link on c and answers it.
func RunCommand(ctx context.Context, c hostconn.Conn, cmd linkproto.Command) linkproto.Result {
	d, err := c.Do(ctx, hostconn.Command{ID: cmd.ID, Op: hostconn.Op(cmd.Op), Desktop: cmd.Desktop, Template: cmd.Template})
	if err != nil {
		return linkproto.Result{Error: ErrorToWire(err)}
	}
	w := ToWire(d)
	return linkproto.Result{Desktop: &w}
}

// readOpen reads the Open frame that starts a stream, within
// HandshakeTimeout.
func readOpen(s net.Conn) (linkproto.Open, error) {
	_ = s.SetReadDeadline(time.Now().Add(HandshakeTimeout))
	var open linkproto.Open
	if err := linkproto.ReadFrame(s, &open); err != nil {
		return open, err
	}
	_ = s.SetReadDeadline(time.Time{})
	return open, nil
}
