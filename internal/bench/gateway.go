package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strings"
	"time"

	"github.com/coder/websocket"

	"lobby/internal/provider/memory"
)

// GatewayConfig configures RunGateway.
type GatewayConfig struct {
	Node     NodeConfig
	Duration time.Duration // of each throughput measurement; default 5 s
	Pings    int           // round trips per path for latency; default 3000
	Rounds   int           // latency rounds, interleaving the paths; default 5
	// Outstanding is how many full-frame requests the throughput client
	// keeps in flight; default 2.
	Outstanding int
	// Synthetic measures latency against a 1x1 synthetic source even when
	// Xvnc is installed.
	Synthetic  bool
	CPUProfile string // CPU profile of Lobby's throughput phase
	Log        io.Writer
}

func (c *GatewayConfig) defaults() {
	if c.Duration <= 0 {
		c.Duration = 5 * time.Second
	}
	setDefault(&c.Pings, 3000)
	setDefault(&c.Rounds, 5)
	setDefault(&c.Outstanding, 2)
	c.Rounds = min(c.Rounds, c.Pings)
	if c.Log == nil {
		c.Log = io.Discard
	}
}

// Path names.
const (
	PathDirect     = "direct TCP (no proxy)"
	PathWebsockify = "websockify"
	PathLobby      = "lobby /gateway/vnc"
)

// Rate is a throughput measurement.
type Rate struct {
	Path    string
	Bytes   int64
	Elapsed time.Duration
	CPU     *CPUReport
}

// MiBps is mebibytes per second.
func (r Rate) MiBps() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Bytes) / (1 << 20) / r.Elapsed.Seconds()
}

// PathLatency is a latency measurement over one path.
type PathLatency struct {
	Path string
	Summary
}

// GatewayResult is the outcome of RunGateway.
type GatewayResult struct {
	Machine    Machine
	Config     GatewayConfig
	Websockify string // its version
	Throughput []Rate
	LatencyOn  string // what answered the round trips
	Latency    []PathLatency
}

// RunGateway measures the throughput and the added latency of Lobby's
// console gateway and of websockify in front of the same RFB source.
func RunGateway(ctx context.Context, cfg GatewayConfig) (_ *GatewayResult, err error) {
	cfg.defaults()
	res := &GatewayResult{Machine: ReadMachine(), Config: cfg, Websockify: websockifyVersion()}
	synth, err := memory.ListenSynthetic("127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer synth.Close()

	// The latency source: a bare Xvnc, or a 1x1 synthetic one.
	latAddr, closeLat, err := latencySource(ctx, cfg.Synthetic, res)
	if err != nil {
		return nil, err
	}
	defer closeLat()

	mem, err := memory.New(memory.Config{})
	if err != nil {
		return nil, err
	}
	cfg.Node.Provider = &consoleProvider{Provider: mem, remote: map[string]string{"lat-": latAddr}}
	node, err := StartNode(ctx, cfg.Node)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, node.Close()) }()
	for _, p := range []string{"thru", "lat"} {
		if err := node.MakePool(ctx, p, 1, time.Minute); err != nil {
			return nil, err
		}
	}
	names, err := node.CreateUsers(ctx, "viewer", 1, "gateway password")
	if err != nil {
		return nil, err
	}
	tokens, err := node.IssueTokens(ctx, names)
	if err != nil {
		return nil, err
	}
	user := &Client{HTTP: NewHTTPClient(2), Base: node.URL, Token: tokens[0]}

	wsThru, wsThruAddr, err := startWebsockify(ctx, synth.Addr().String())
	if err != nil {
		return nil, err
	}
	defer wsThru.stop(3 * time.Second)
	wsLat, wsLatAddr, err := startWebsockify(ctx, latAddr)
	if err != nil {
		return nil, err
	}
	defer wsLat.stop(3 * time.Second)

	thru := []pathDial{
		{PathDirect, tcpDial(synth.Addr().String())},
		{PathWebsockify, wsDial("ws://" + wsThruAddr + "/")},
		{PathLobby, lobbyDial(user, "thru")},
	}
	if res.Throughput, err = throughputs(ctx, cfg.Log, "gateway", thru, cfg.Duration, cfg.Outstanding, PathLobby, cfg.CPUProfile); err != nil {
		return nil, err
	}
	fmt.Fprintf(cfg.Log, "gateway: %d round trips on each path against %s\n", cfg.Pings, res.LatencyOn)
	res.Latency, err = latency(ctx, []string{PathDirect, PathWebsockify, PathLobby},
		[]dialFunc{tcpDial(latAddr), wsDial("ws://" + wsLatAddr + "/"), lobbyDial(user, "lat")}, cfg.Pings, cfg.Rounds)
	return res, err
}

// latencySource starts what answers the round trips and says what it is.
func latencySource(ctx context.Context, synthetic bool, res *GatewayResult) (string, func(), error) {
	if _, err := exec.LookPath("Xvnc"); err == nil && !synthetic {
		x, err := startXvnc(ctx, "1280x800")
		if err != nil {
			return "", nil, err
		}
		res.LatencyOn = "Xvnc (TigerVNC, 1280x800x24, no session, security None), one-pixel non-incremental FramebufferUpdateRequest → Raw update"
		return x.addr, func() { x.stop(3 * time.Second) }, nil
	}
	l, err := listenSource("127.0.0.1:0", &memory.Source{Width: 1, Height: 1})
	if err != nil {
		return "", nil, err
	}
	res.LatencyOn = "a 1x1 synthetic source (memory.Source), FramebufferUpdateRequest → 20-byte update"
	return l.Addr().String(), func() { l.Close() }, nil
}

// websockifyVersion asks Debian's package database, or says unknown.
func websockifyVersion() string {
	out, err := exec.Command("dpkg-query", "-W", "-f", "${Version}", "websockify").Output()
	if err != nil || len(out) == 0 {
		return "unknown version"
	}
	return "Debian " + string(out)
}

// dialFunc opens a stream to an RFB server positioned at its version.
type dialFunc func(ctx context.Context) (net.Conn, error)

// pathDial is one path a console benchmark measures.
type pathDial struct {
	path string
	dial dialFunc
}

// throughputs measures each path in turn, logging as name; the CPU
// profile (if any) covers the profiled path only.
func throughputs(ctx context.Context, log io.Writer, name string, paths []pathDial, d time.Duration, depth int, profiled, profile string) ([]Rate, error) {
	var out []Rate
	for _, p := range paths {
		fmt.Fprintf(log, "%s: throughput through %s for %s\n", name, p.path, d)
		prof := ""
		if p.path == profiled {
			prof = profile
		}
		r, err := throughput(ctx, p.dial, d, depth, prof)
		if err != nil {
			return nil, fmt.Errorf("throughput through %s: %w", p.path, err)
		}
		r.Path = p.path
		out = append(out, r)
	}
	return out, nil
}

func tcpDial(addr string) dialFunc {
	return func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}
}

// wsDial opens a WebSocket with subprotocol binary, as noVNC does.
func wsDial(url string) dialFunc {
	return func(ctx context.Context) (net.Conn, error) {
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		ws, _, err := websocket.Dial(dctx, url, &websocket.DialOptions{Subprotocols: []string{"binary"}})
		if err != nil {
			return nil, fmt.Errorf("dial %s: %w", redactTicket(url), err)
		}
		return websocket.NetConn(ctx, ws, websocket.MessageBinary), nil
	}
}

// lobbyDial connects to the pool for a fresh single-use ticket, then opens
// the gateway's WebSocket with it.
func lobbyDial(c *Client, pool string) dialFunc {
	return func(ctx context.Context) (net.Conn, error) {
		var g struct {
			VNCURL string `json:"vnc_url"`
		}
		if err := c.Call(ctx, "POST", "/api/v1/connect", map[string]string{"pool": pool}, &g); err != nil {
			return nil, fmt.Errorf("connect to pool %s: %w", pool, err)
		}
		return wsDial("ws" + strings.TrimPrefix(c.Base, "http") + g.VNCURL)(ctx)
	}
}

func redactTicket(url string) string {
	if i := strings.Index(url, "ticket="); i >= 0 {
		return url[:i] + "ticket=…"
	}
	return url
}

// openViewer dials and completes the RFB handshake.
func openViewer(ctx context.Context, dial dialFunc) (*viewer, net.Conn, error) {
	conn, err := dial(ctx)
	if err != nil {
		return nil, nil, err
	}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if err := clientNone(conn); err != nil {
		conn.Close()
		return nil, nil, err
	}
	v, err := newViewer(conn)
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	conn.SetDeadline(time.Time{})
	return v, conn, nil
}

// throughput pumps full frames through one path for d.
func throughput(ctx context.Context, dial dialFunc, d time.Duration, depth int, profile string) (Rate, error) {
	v, conn, err := openViewer(ctx, dial)
	if err != nil {
		return Rate{}, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(d + 30*time.Second))
	prof, err := StartProfile(profile)
	if err != nil {
		return Rate{}, err
	}
	n, elapsed, err := v.pump(d, depth)
	cpu, perr := prof.Stop()
	return Rate{Bytes: n, Elapsed: elapsed, CPU: cpu}, errors.Join(err, perr)
}

// latency times round trips on every path, in rounds that interleave the
// paths so that a change in the machine's load affects them alike.
func latency(ctx context.Context, paths []string, dials []dialFunc, pings, rounds int) ([]PathLatency, error) {
	viewers := make([]*viewer, len(dials))
	for i, dial := range dials {
		v, conn, err := openViewer(ctx, dial)
		if err != nil {
			return nil, fmt.Errorf("latency through %s: %w", paths[i], err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(5 * time.Minute))
		if _, err := v.ping(50); err != nil { // warm up
			return nil, fmt.Errorf("latency through %s: %w", paths[i], err)
		}
		viewers[i] = v
	}
	all := make([][]time.Duration, len(dials))
	for r := range rounds {
		n := pings / rounds
		if r == rounds-1 {
			n = pings - n*(rounds-1)
		}
		for i, v := range viewers {
			ds, err := v.ping(n)
			if err != nil {
				return nil, fmt.Errorf("latency through %s: %w", paths[i], err)
			}
			all[i] = append(all[i], ds...)
		}
	}
	out := make([]PathLatency, len(dials))
	for i := range dials {
		out[i] = PathLatency{Path: paths[i], Summary: Summarize(all[i])}
	}
	return out, nil
}
