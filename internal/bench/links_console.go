package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/pprof"
	"time"

	"lobby/internal/agent"
	"lobby/internal/linkproto"
	"lobby/internal/provider/memory"
)

// PathLink is the console path through an agent's link.
const PathLink = "lobby /gateway/vnc ⇄ link ⇄ agent"

// LinkConfig configures RunLink: the gateway benchmark's settings, and
// what the link path adds.
type LinkConfig struct {
	GatewayConfig
	// LinkPing is the agent's ping interval; default the agent's, 5 s.
	LinkPing time.Duration
	// Binary is the lobby executable for the real-desktop measurement
	// (a `lobby agent` process with the local provider, one Xvnc
	// desktop); empty or NoDesktop skips it.
	Binary    string
	NoDesktop bool
}

// LinkResult is the outcome of RunLink.
type LinkResult struct {
	GatewayResult
	LinkConfig LinkConfig
	HostID     string // the in-process agent's host
	// Desktop is the real-desktop measurement; nil when skipped
	// (DesktopNote says why).
	Desktop     *DesktopPaths
	DesktopNote string
}

// RunLink measures console throughput and added latency through a node's
// gateway and an agent's link, next to the gateway's in-process path (no
// link), websockify and direct TCP, all in front of the same sources.
func RunLink(ctx context.Context, cfg LinkConfig) (_ *LinkResult, err error) {
	cfg.defaults()
	if cfg.LinkPing <= 0 {
		cfg.LinkPing = agent.DefaultPing
	}
	res := &LinkResult{LinkConfig: cfg}
	res.Machine, res.Config, res.Websockify = ReadMachine(), cfg.GatewayConfig, websockifyVersion()
	rig := &linkRig{}
	defer func() { err = errors.Join(err, rig.close()) }()
	if err := rig.start(ctx, cfg, res); err != nil {
		return nil, err
	}
	thru := []pathDial{
		{PathDirect, tcpDial(rig.synth)},
		{PathWebsockify, wsDial("ws://" + rig.wsThru + "/")},
		{PathLobby, lobbyDial(rig.user, "thru")},
		{PathLink, lobbyDial(rig.user, "link-thru")},
	}
	if res.Throughput, err = throughputs(ctx, cfg.Log, "link", thru, cfg.Duration, cfg.Outstanding, PathLink, cfg.CPUProfile); err != nil {
		return nil, err
	}
	fmt.Fprintf(cfg.Log, "link: %d round trips on each path against %s\n", cfg.Pings, res.LatencyOn)
	res.Latency, err = latency(ctx, []string{PathDirect, PathWebsockify, PathLobby, PathLink},
		[]dialFunc{tcpDial(rig.lat), wsDial("ws://" + rig.wsLat + "/"), lobbyDial(rig.user, "lat"), lobbyDial(rig.user, "link-lat")},
		cfg.Pings, cfg.Rounds)
	if err != nil {
		return nil, err
	}
	switch {
	case cfg.NoDesktop:
		res.DesktopNote = "skipped (--no-desktop)"
	case cfg.Binary == "":
		res.DesktopNote = "skipped: no lobby binary to run as the agent"
	default:
		res.Desktop, res.DesktopNote, err = realDesktopPaths(ctx, cfg, rig.node, rig.user)
	}
	return res, err
}

// linkRig is what RunLink measures: the sources, a node with its
// in-process agent (pools thru and lat), a linked agent (pools link-thru
// and link-lat), websockify in front of each source, and a viewer.
type linkRig struct {
	synth, lat    string // the sources' addresses
	wsThru, wsLat string // websockify's
	node          *Node
	user          *Client
	closers       []func() error
}

func (r *linkRig) onClose(f func() error) { r.closers = append(r.closers, f) }

// close stops everything, last started first.
func (r *linkRig) close() error {
	var errs []error
	for i := len(r.closers) - 1; i >= 0; i-- {
		errs = append(errs, r.closers[i]())
	}
	return errors.Join(errs...)
}

func (r *linkRig) start(ctx context.Context, cfg LinkConfig, res *LinkResult) error {
	synth, err := memory.ListenSynthetic("127.0.0.1:0")
	if err != nil {
		return err
	}
	r.onClose(synth.Close)
	r.synth = synth.Addr().String()
	latAddr, closeLat, err := latencySource(ctx, cfg.Synthetic, &res.GatewayResult)
	if err != nil {
		return err
	}
	r.onClose(func() error { closeLat(); return nil })
	r.lat = latAddr
	if err := r.startNode(ctx, cfg, res); err != nil {
		return err
	}
	for _, w := range []struct{ source, addr *string }{{&r.synth, &r.wsThru}, {&r.lat, &r.wsLat}} {
		ws, addr, err := startWebsockify(ctx, *w.source)
		if err != nil {
			return err
		}
		r.onClose(func() error { ws.stop(3 * time.Second); return nil })
		*w.addr = addr
	}
	return nil
}

// startNode starts the node and the linked agent, makes the pools and
// signs the viewer in. For the CPU profile the node's goroutines carry
// the label side=node and the linked agent's side=agent.
func (r *linkRig) startNode(ctx context.Context, cfg LinkConfig, res *LinkResult) error {
	mem, err := memory.New(memory.Config{})
	if err != nil {
		return err
	}
	cfg.Node.Provider = &consoleProvider{Provider: mem, remote: map[string]string{"lat-": r.lat}}
	pprof.Do(ctx, pprof.Labels("side", "node"), func(ctx context.Context) { r.node, err = StartNode(ctx, cfg.Node) })
	if err != nil {
		return err
	}
	r.onClose(r.node.Close)
	for _, p := range []string{"thru", "lat"} {
		if err := r.node.MakePool(ctx, p, 1, time.Minute); err != nil {
			return err
		}
	}
	stopAgent, hostID, err := linkAgent(ctx, r.node, r.lat, cfg.LinkPing, cfg.Node.DataDir)
	if err != nil {
		return err
	}
	r.onClose(func() error { stopAgent(); return nil })
	res.HostID = hostID
	// The in-process agent's host has two desktops and the linked one
	// none, so the pool manager puts these on the linked host.
	for _, p := range []string{"link-thru", "link-lat"} {
		if err := r.node.MakePool(ctx, p, 1, time.Minute); err != nil {
			return err
		}
		if err := onHost(ctx, r.node, p, hostID); err != nil {
			return err
		}
	}
	names, err := r.node.CreateUsers(ctx, "viewer", 1, "gateway password")
	if err != nil {
		return err
	}
	tokens, err := r.node.IssueTokens(ctx, names)
	if err != nil {
		return err
	}
	r.user = &Client{HTTP: NewHTTPClient(2), Base: r.node.URL, Token: tokens[0]}
	return nil
}

// linkAgent joins an in-process agent to the node with a token from POST
// /api/v1/tokens and runs it until stop is called. Its provider is the
// memory provider; desktops named link-lat-* get the latency source.
func linkAgent(ctx context.Context, node *Node, latAddr string, ping time.Duration, parent string) (stop func(), hostID string, err error) {
	var tok struct{ Token string }
	if err := node.Admin.Call(ctx, "POST", "/api/v1/tokens", map[string]any{"uses": 1, "expires_in": "1h"}, &tok); err != nil {
		return nil, "", fmt.Errorf("create a join token: %w", err)
	}
	dir, err := os.MkdirTemp(parent, "lobby-bench-agent-")
	if err != nil {
		return nil, "", err
	}
	mem, err := memory.New(memory.Config{})
	if err != nil {
		return nil, "", err
	}
	a, err := agent.New(agent.Config{
		Name: "bench-link-agent", DataDir: dir, Provider: &consoleProvider{Provider: mem, remote: map[string]string{"link-lat-": latAddr}},
		Hubs:    []linkproto.HubSetting{{URL: node.URL, Ping: linkproto.Duration(ping), AutoConnect: true}},
		Release: "bench", Logger: slog.New(slog.DiscardHandler),
	})
	if err == nil {
		err = a.Join(ctx, tok.Token)
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, "", fmt.Errorf("join the agent: %w", err)
	}
	actx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go pprof.Do(actx, pprof.Labels("side", "agent"), func(ctx context.Context) { done <- a.Run(ctx) })
	stop = func() { cancel(); <-done; os.RemoveAll(dir) }
	deadline := time.Now().Add(30 * time.Second)
	for !node.Server.Hub.Linked(a.HostID()) {
		if time.Now().After(deadline) {
			stop()
			return nil, "", fmt.Errorf("the agent's link is not up after 30 s: %s", a.Status().LastError)
		}
		if err := sleep(ctx, 20*time.Millisecond); err != nil {
			stop()
			return nil, "", err
		}
	}
	return stop, a.HostID(), nil
}

// onHost checks that the pool's desktops are on the host.
func onHost(ctx context.Context, node *Node, pool, hostID string) error {
	var page struct {
		Items []struct {
			Name   string
			HostID string `json:"host_id"`
		}
	}
	if err := node.Admin.Call(ctx, "GET", "/api/v1/desktops?pool="+pool, nil, &page); err != nil {
		return err
	}
	for _, d := range page.Items {
		if d.HostID != hostID {
			return fmt.Errorf("desktop %s of pool %s is on host %s, not on the linked agent's %s", d.Name, pool, d.HostID, hostID)
		}
	}
	if len(page.Items) == 0 {
		return fmt.Errorf("pool %s has no desktop", pool)
	}
	return nil
}
