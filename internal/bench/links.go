package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Targets of the links benchmark (issue 4).
const (
	LinksTargetRSS       = 2 << 30 // node VmRSS with 5,000 links and 100,000 desktops
	LinksTargetCores     = 0.10    // node CPU at a 1 s ping interval, of one core
	LinksTargetReconnect = 30 * time.Second
	AgentTargetRSS       = 50 << 20 // one real lobby agent
)

// LinksConfig configures RunLinks.
type LinksConfig struct {
	// Binary is the lobby executable, started as the node (`lobby server
	// --plain-http`) and as the one real agent.
	Binary   string
	Links    int           // agent links the node holds at the end; default 5,000
	Steps    []int         // smaller sizes measured on the way, ascending
	Desktops int           // desktops each agent reports; default 20
	Ping     time.Duration // the links' ping interval; default 1 s
	Window   time.Duration // steady window measured at each size; default 60 s
	// Settle is the wait after every desktop is recorded and before the
	// window; default 10 s.
	Settle time.Duration
	// Parallel is how many agents join at once; default 32.
	Parallel int
	// NoRestart skips the kill-and-restart measurement.
	NoRestart bool
	// AgentDesktops is the number of real local desktops (Xvnc) the one
	// real agent runs while measured: 0 measures it idle, -1 skips it.
	// Without Xvnc it is measured idle.
	AgentDesktops int
	DataDir       string // where temporary directories are made
	// InProcess runs the node in this process (server.New) instead of a
	// child, for CPU profiling: node goroutines carry the pprof label
	// side=node and agents' side=agent. Memory and CPU figures then
	// cover node and load generator together, and there is no restart.
	InProcess bool
	// CPUProfile is written over the window at the largest size.
	CPUProfile string
	Log        io.Writer
}

func (c *LinksConfig) defaults() error {
	setDefault(&c.Links, 5000)
	setDefault(&c.Desktops, 20)
	setDefault(&c.Parallel, 32)
	if c.Ping <= 0 {
		c.Ping = time.Second
	}
	if c.Window <= 0 {
		c.Window = 60 * time.Second
	}
	if c.Settle <= 0 {
		c.Settle = 10 * time.Second
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	if c.Binary == "" && !c.InProcess {
		return errors.New("links: the lobby binary is needed to start the node as a child process")
	}
	if c.InProcess {
		c.NoRestart, c.AgentDesktops = true, -1
	}
	if c.Desktops < 0 {
		return fmt.Errorf("--desktops %d is not valid", c.Desktops)
	}
	steps := slices.Clone(c.Steps)
	slices.Sort(steps)
	steps = slices.Compact(steps)
	c.Steps = slices.DeleteFunc(steps, func(n int) bool { return n <= 0 || n >= c.Links })
	return nil
}

// LinksResult is the outcome of RunLinks.
type LinksResult struct {
	Machine Machine
	Config  LinksConfig
	NodeHow string
	FDLimit uint64
	Idle    Mem // the node before any link
	// IdleCPU is the idle node's CPU over IdleWindow, in cores.
	IdleCPU    float64
	IdleWindow time.Duration
	Agent      *AgentProcResult
	Steps      []LinksStep
	Restart    *LinksRestart
	Desktops   int // recorded by the node at the largest size (GET /api/v1/desktops)
}

// LinksStep is the node measured while holding a number of links.
type LinksStep struct {
	Links    int           // links up at the end of the window
	Want     int           // links asked for
	JoinTime time.Duration // joining the agents added at this step
	UpTime   time.Duration // from the step's first join to all its links up
	Recorded time.Duration // from the step's first join to every desktop reported
	Window   time.Duration
	Mem      Mem   // node VmRSS and VmHWM at the end of the window
	BenchMem Mem   // this process (the load generator) then
	MaxRSS   int64 // the largest VmRSS sampled in the window
	NodeCPU  time.Duration
	BenchCPU time.Duration // this process: the load generator
	Busy     time.Duration // every process on the machine
	Retries  int           // joins tried again after a transient error (a timeout)
	Flaps    int           // links that came up again during the window
	Errors   int           // links with a last error (a failed reconcile)
	RTT      Summary       // ping round trips the node measured, one per link
	Profile  *CPUReport    // this process over the window, when profiled
}

// NodeCores is the node's CPU over the window, in cores.
func (s LinksStep) NodeCores() float64 { return s.NodeCPU.Seconds() / s.Window.Seconds() }

// BenchCores is the load generator's CPU over the window, in cores.
func (s LinksStep) BenchCores() float64 { return s.BenchCPU.Seconds() / s.Window.Seconds() }

// OtherCores is the CPU of everything else, in cores.
func (s LinksStep) OtherCores() float64 {
	return max(0, (s.Busy-s.NodeCPU-s.BenchCPU).Seconds()/s.Window.Seconds())
}

// PerLink is the node's VmRSS above idle, per link.
func (s LinksStep) PerLink(idle int64) int64 {
	if s.Links == 0 {
		return 0
	}
	return (s.Mem.RSS - idle) / int64(s.Links)
}

// RunLinks starts a node as a child process, links Links in-process agents
// to it (at each of Steps on the way), measures its memory and CPU in a
// steady window at each size, then kills it with SIGKILL, restarts it on
// the same data directory and times the links' return.
func RunLinks(ctx context.Context, cfg LinksConfig) (_ *LinksResult, err error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	res := &LinksResult{Machine: ReadMachine(), Config: cfg}
	if res.FDLimit, err = raiseFDLimit(); err != nil {
		return nil, err
	}
	if need := uint64(cfg.Links) + 1024; res.FDLimit < need {
		return nil, fmt.Errorf("links: %d links need %d open files in this process and in the node, and the limit is %d: raise it (ulimit -n) or ask for fewer --links", cfg.Links, need, res.FDLimit)
	}
	dir, err := os.MkdirTemp(cfg.DataDir, "lobby-bench-links-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil { // local desktops' users traverse it
		return nil, err
	}
	var node *nodeProc
	if cfg.InProcess {
		node, err = startNodeSelf(ctx, dir, cfg.Log)
	} else {
		node, err = startNodeProc(ctx, cfg.Binary, dir, cfg.Log)
	}
	if err != nil {
		return nil, err
	}
	defer node.stop()
	res.NodeHow = node.how()
	if err := res.idle(ctx, node); err != nil {
		return nil, err
	}
	if cfg.AgentDesktops >= 0 {
		if res.Agent, err = measureAgentProc(ctx, cfg, node, filepath.Join(dir, "real-agent")); err != nil {
			return res, err
		}
	}
	fl := newFleet(filepath.Join(dir, "agents"), node.URL, cfg.Ping, cfg.Desktops)
	defer func() { err = errors.Join(err, fl.close()) }()
	for _, n := range append(slices.Clone(cfg.Steps), cfg.Links) {
		st, err := res.step(ctx, node, fl, n, n == cfg.Links)
		if st != nil {
			res.Steps = append(res.Steps, *st)
		}
		if err != nil {
			return res, err
		}
	}
	fmt.Fprintf(cfg.Log, "links: counting the desktops the node recorded\n")
	if res.Desktops, err = node.countDesktops(ctx); err != nil {
		return res, err
	}
	if !cfg.NoRestart {
		if res.Restart, err = restartNode(ctx, node, fl, cfg); err != nil {
			return res, err
		}
	}
	return res, nil
}

// step grows the fleet to n links, waits until every desktop is reported,
// and measures the node over the window.
func (r *LinksResult) step(ctx context.Context, node *nodeProc, fl *fleet, n int, last bool) (*LinksStep, error) {
	cfg := r.Config
	st := &LinksStep{Want: n, Window: cfg.Window}
	fmt.Fprintf(cfg.Log, "links: joining agents %d to %d (%d at a time)\n", fl.size()+1, n, cfg.Parallel)
	// Spare uses for joins that fail after the node recorded them.
	token, err := node.joinToken(ctx, n-fl.size()+(n-fl.size())/20+1)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	if err := fl.grow(ctx, token, n, cfg.Parallel); err != nil {
		return nil, err
	}
	st.JoinTime, st.Retries = time.Since(start), int(fl.retries.Swap(0))
	fmt.Fprintf(cfg.Log, "links: %d agents joined in %s; waiting for their links\n", n, st.JoinTime.Round(time.Millisecond))
	wait := 2*time.Minute + time.Duration(n)*20*time.Millisecond
	if _, err := waitLinks(ctx, node, fl, n, wait, 500*time.Millisecond); err != nil {
		return nil, err
	}
	st.UpTime = time.Since(start)
	fmt.Fprintf(cfg.Log, "links: %d links up after %s; waiting until their %d desktops are reported\n", n, st.UpTime.Round(time.Millisecond), n*cfg.Desktops)
	if err := waitReported(ctx, node, fl.prefix, n*cfg.Desktops, wait); err != nil {
		return nil, err
	}
	st.Recorded = time.Since(start)
	fmt.Fprintf(cfg.Log, "links: settling %s, then measuring the node for %s\n", cfg.Settle, cfg.Window)
	if err := sleep(ctx, cfg.Settle); err != nil {
		return nil, err
	}
	var prof *Profile
	if last && cfg.CPUProfile != "" {
		var err error
		if prof, err = StartProfile(cfg.CPUProfile); err != nil {
			return nil, err
		}
	}
	err = st.measure(ctx, node)
	if prof != nil {
		var perr error
		st.Profile, perr = prof.Stop()
		err = errors.Join(err, perr)
	}
	if err != nil {
		return nil, err
	}
	ls, err := node.links(ctx)
	if err != nil {
		return nil, err
	}
	st.fromLinks(ls, fl.prefix, time.Now().Add(-cfg.Window))
	fmt.Fprintf(cfg.Log, "links: %d links: node %s VmRSS, %.1f%% of a core\n", st.Links, MiB(st.Mem.RSS), 100*st.NodeCores())
	return st, fl.err()
}

// idle measures the node before any link: its memory after 3 s, and its
// CPU over a window of up to 20 s.
func (r *LinksResult) idle(ctx context.Context, node *nodeProc) error {
	if err := sleep(ctx, 3*time.Second); err != nil {
		return err
	}
	var err error
	if r.Idle, err = ReadMem(node.pid()); err != nil {
		return err
	}
	r.IdleWindow = min(r.Config.Window, 20*time.Second)
	fmt.Fprintf(r.Config.Log, "links: the idle node's CPU over %s\n", r.IdleWindow)
	c0, err := node.cpu()
	if err != nil {
		return err
	}
	t0 := time.Now()
	if err := sleep(ctx, r.IdleWindow); err != nil {
		return err
	}
	c1, err := node.cpu()
	r.IdleWindow = time.Since(t0)
	r.IdleCPU = (c1 - c0).Seconds() / r.IdleWindow.Seconds()
	return err
}

// measure samples the node's CPU and memory over the window.
func (s *LinksStep) measure(ctx context.Context, node *nodeProc) error {
	c0, err := node.cpu()
	if err != nil {
		return err
	}
	b0, m0, t0 := CPUTime(), readCPUStat(), time.Now()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for time.Since(t0) < s.Window {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		if m, err := ReadMem(node.pid()); err == nil {
			s.MaxRSS = max(s.MaxRSS, m.RSS)
		}
	}
	c1, err := node.cpu()
	if err != nil {
		return err
	}
	s.Window = time.Since(t0)
	s.NodeCPU, s.BenchCPU, s.Busy = c1-c0, CPUTime()-b0, machineBusy(m0, readCPUStat())
	s.Mem, err = ReadMem(node.pid())
	s.MaxRSS = max(s.MaxRSS, s.Mem.RSS)
	s.BenchMem = SelfMem()
	return err
}

// fromLinks counts the fleet's links that are up, those that came up
// after since (they dropped and came back), and their round trips.
func (s *LinksStep) fromLinks(ls []linkStatus, prefix string, since time.Time) {
	var rtts []time.Duration
	for _, l := range ls {
		if l.State != "up" || !strings.HasPrefix(l.Peer, prefix) {
			continue
		}
		s.Links++
		if l.Since.After(since) {
			s.Flaps++
		}
		if l.LastError != "" {
			s.Errors++
		}
		rtts = append(rtts, time.Duration(l.RTTMillis*float64(time.Millisecond)))
	}
	s.RTT = Summarize(rtts)
}

// raiseFDLimit raises this process's soft limit of open files to its
// hard limit (children inherit it) and returns the new limit.
func raiseFDLimit() (uint64, error) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, fmt.Errorf("read the open files limit: %w", err)
	}
	if l.Cur < l.Max {
		l.Cur = l.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
			return 0, fmt.Errorf("raise the open files limit: %w", err)
		}
	}
	return l.Cur, nil
}
