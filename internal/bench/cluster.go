package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// ClusterConfig configures RunCluster.
type ClusterConfig struct {
	Binary string // the lobby executable, started as the nodes
	// Nodes are the cluster sizes measured, each on a fresh schema;
	// default 1, 2, 3.
	Nodes       []int
	Users       int           // users signed in beforehand; at least Concurrency
	Desktops    int           // pool size; at least Concurrency or connects are refused
	Concurrency int           // client goroutines, each looping connect then release
	Duration    time.Duration // measured phase per size
	Warmup      time.Duration // unmeasured phase before it
	// Postgres is the server's URL (each size gets a fresh schema);
	// empty: TEST_DATABASE_URL, else a throwaway server.
	Postgres string
	// CPUProfile, when set, runs site 1 in this process and writes a CPU
	// profile of each measured phase to this path, the size inserted
	// before the extension (cluster.prof: cluster-3nodes.prof).
	CPUProfile string
	DataDir    string
	Log        io.Writer
}

func (c *ClusterConfig) defaults() error {
	if len(c.Nodes) == 0 {
		c.Nodes = []int{1, 2, 3}
	}
	setDefault(&c.Users, 256)
	setDefault(&c.Desktops, 64)
	setDefault(&c.Concurrency, 16)
	if c.Duration <= 0 {
		c.Duration = 10 * time.Second
	}
	if c.Warmup < 0 {
		c.Warmup = 0
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	for _, n := range c.Nodes {
		if n < 1 || n > 16 {
			return fmt.Errorf("--nodes: %d is not valid: give cluster sizes from 1 to 16, e.g. 1,2,3", n)
		}
	}
	switch {
	case c.Binary == "":
		return errors.New("cluster: the lobby binary is needed to start the nodes")
	case c.Users < c.Concurrency:
		return fmt.Errorf("--users %d is fewer than --concurrency %d: each client needs users of its own", c.Users, c.Concurrency)
	case haproxyBinary() == "":
		return errors.New("cluster: HAProxy is not installed: apt-get install haproxy")
	}
	return nil
}

// ClusterResult is the report of RunCluster.
type ClusterResult struct {
	Config   ClusterConfig
	Machine  Machine
	Store    string
	NodeHow  string // a child node's command line
	Balancer string // HAProxy's version line
	Steps    []ClusterStep
}

// ClusterStep is one cluster size measured.
type ClusterStep struct {
	Nodes   int
	Setup   time.Duration
	Elapsed time.Duration
	// Assignments are connects answered 200, Refused 409 (pool empty),
	// Errors requests that failed even after the client's one retry.
	Assignments, Refused, Errors int
	// Retried requests were sent a second time (the network or a node
	// failed them, or HAProxy answered 5xx); RetriedOK then succeeded.
	Retried, RetriedOK int
	FirstError         string
	Connect, Release   Summary
	CPU                ClusterCPU
	// Idle is the CPU of the cluster before the load, with nobody
	// using it.
	Idle ClusterCPU
	// Profile is site 1's CPU profile (run in this process), with
	// CPUProfile.
	Profile *CPUReport
	Check   HoldCheck
}

// Rate is assignments per second of the measured phase.
func (s *ClusterStep) Rate() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Assignments) / s.Elapsed.Seconds()
}

// RunCluster measures the assignment rate through HAProxy for each
// cluster size: Nodes `lobby server` processes on one PostgreSQL (a
// fresh schema each), one host agent per node in this process (memory
// provider) that the pool's desktops are created on, users created and
// signed in once through the balancer, then RunAssign's clients looping
// connect and release through it. At the end of each size the store's
// audit log and assignments are checked: no desktop held by two people.
func RunCluster(ctx context.Context, cfg ClusterConfig) (*ClusterResult, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	res := &ClusterResult{Config: cfg, Machine: ReadMachine()}
	res.Balancer = haproxyVersion(haproxyBinary())
	base, stop, err := pgServer(ctx, cfg.Postgres, cfg.DataDir)
	if err != nil {
		return nil, err
	}
	defer stop()
	pgPID := postmasterPID(base)
	var errs []error
	for _, n := range cfg.Nodes {
		st, err := clusterStep(ctx, cfg, base, pgPID, n, res)
		if st != nil {
			res.Steps = append(res.Steps, *st)
			fmt.Fprintf(cfg.Log, "cluster: %d nodes: %.0f assignments/s, connect p99 %s, %d errors, %d retried\n",
				n, st.Rate(), Ms(st.Connect.P99), st.Errors, st.Retried)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%d nodes: %w", n, err))
			if st == nil || ctx.Err() != nil {
				break
			}
		}
	}
	return res, errors.Join(errs...)
}

// clusterStep sets up and measures one cluster size. A step that ran
// but found failures (errors, a desktop held twice) is returned with
// the error.
func clusterStep(ctx context.Context, cfg ClusterConfig, base string, pgPID, nodes int, res *ClusterResult) (_ *ClusterStep, err error) {
	t0 := time.Now()
	dbURL, info, drop, err := pgSchema(ctx, base)
	if err != nil {
		return nil, err
	}
	defer drop()
	res.Store = info
	spec := nodesSpec{Binary: cfg.Binary, Nodes: nodes, DBURL: dbURL, DataDir: cfg.DataDir, Name: "cluster", Log: cfg.Log}
	if cfg.CPUProfile != "" {
		spec.SelfSite = 1
	}
	fmt.Fprintf(cfg.Log, "cluster: starting %d nodes\n", nodes)
	c, err := startNodes(ctx, spec)
	if err != nil {
		return nil, err
	}
	defer c.stop()
	if n := c.nodes[len(c.nodes)-1]; n.self == nil {
		res.NodeHow = strings.ReplaceAll(n.how(), dbURL, "URL")
	}
	lb, err := startBalancer(ctx, haproxyBinary(), c.dir, c.nodes)
	if err != nil {
		return nil, err
	}
	defer lb.stop()
	stopAgents, err := startClusterAgents(ctx, c, cfg.Log)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, stopAgents()) }()
	fmt.Fprintf(cfg.Log, "cluster: %d nodes: provisioning %d desktops\n", nodes, cfg.Desktops)
	// MakePool needs only an administrator's client.
	if err := (&Node{Admin: c.nodes[0].api}).MakePool(ctx, "bench", cfg.Desktops, 5*time.Minute); err != nil {
		return nil, err
	}
	lbURL := lb.url
	tokens, err := clusterUsers(ctx, cfg, c, lbURL)
	if err != nil {
		return nil, err
	}
	st := &ClusterStep{Nodes: nodes, Setup: time.Since(t0)}
	// What the cluster costs with nobody using it: heartbeats, leases,
	// the work queue's polling, link pings.
	idle := min(cfg.Duration/3, 3*time.Second)
	fmt.Fprintf(cfg.Log, "cluster: %d nodes: idle for %s\n", nodes, idle)
	cpu0 := readClusterCPU(c, lb, pgPID)
	if err := sleep(ctx, idle); err != nil {
		return nil, err
	}
	st.Idle = cpuBetween(cpu0, readClusterCPU(c, lb, pgPID))

	l := &assignLoad{url: lbURL, tokens: tokens, hc: NewHTTPClient(cfg.Concurrency), c: cfg.Concurrency, retry: true}
	var done []*assignPhase
	if cfg.Warmup > 0 {
		fmt.Fprintf(cfg.Log, "cluster: %d nodes: warming up for %s\n", nodes, cfg.Warmup)
		done = append(done, l.run(ctx, cfg.Warmup, 10_000_000))
	}
	fmt.Fprintf(cfg.Log, "cluster: %d nodes: measuring for %s with %d clients through HAProxy\n", nodes, cfg.Duration, cfg.Concurrency)
	prof, err := StartProfile(profilePath(cfg.CPUProfile, nodes))
	if err != nil {
		return nil, err
	}
	cpu0 = readClusterCPU(c, lb, pgPID)
	ph := l.run(ctx, cfg.Duration, 10_000_000)
	st.CPU = cpuBetween(cpu0, readClusterCPU(c, lb, pgPID))
	rep, err := prof.Stop()
	if err != nil {
		return nil, err
	}
	if cfg.CPUProfile != "" {
		st.Profile = rep
	}
	done = append(done, ph)
	st.Elapsed = ph.elapsed
	st.Assignments, st.Refused, st.Errors, st.FirstError = ph.ok, ph.refused, ph.errors, ph.firstErr
	st.Retried, st.RetriedOK = ph.retried, ph.retriedOK
	st.Connect, st.Release = Summarize(ph.connect), Summarize(ph.release)

	connects := 0
	for _, p := range done {
		connects += p.ok
	}
	if st.Check, err = checkHolds(ctx, dbURL, connects); err != nil {
		return st, err
	}
	return st, st.failures()
}

// failures is an error naming what went wrong in a measured step.
func (s *ClusterStep) failures() error {
	var errs []error
	if s.Assignments == 0 {
		errs = append(errs, fmt.Errorf("no connect succeeded: %s", s.FirstError))
	}
	if s.Errors > 0 {
		errs = append(errs, fmt.Errorf("%d requests failed after the client's retry; the first: %s", s.Errors, s.FirstError))
	}
	return errors.Join(append(errs, s.Check.err())...)
}

// profilePath inserts the cluster size before path's extension.
func profilePath(path string, nodes int) string {
	if path == "" {
		return ""
	}
	ext := filepath.Ext(path)
	return fmt.Sprintf("%s-%dnodes%s", strings.TrimSuffix(path, ext), nodes, ext)
}

// clusterUsers creates cfg.Users users through node 1's API, then signs
// each in once through the balancer (POST /api/v1/login), a few at a
// time, and returns their tokens.
func clusterUsers(ctx context.Context, cfg ClusterConfig, c *procCluster, lbURL string) ([]string, error) {
	const pw = "bench password 1"
	fmt.Fprintf(cfg.Log, "cluster: creating and signing in %d users through HAProxy\n", cfg.Users)
	admin := &Client{HTTP: c.nodes[0].api.HTTP, Base: lbURL, Token: c.nodes[0].api.Token}
	tokens := make([]string, cfg.Users)
	var mu sync.Mutex
	var first error
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range cfg.Users {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			name := fmt.Sprintf("cluster%05d", i)
			err := admin.Call(ctx, "POST", "/api/v1/users", map[string]any{"username": name, "password": pw, "role": "user"}, nil)
			var out struct{ Token string }
			if err == nil {
				anon := &Client{HTTP: admin.HTTP, Base: lbURL}
				err = anon.Call(ctx, "POST", "/api/v1/login", map[string]string{"username": name, "password": pw}, &out)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil && first == nil {
				first = fmt.Errorf("user %s: %w", name, err)
			}
			tokens[i] = out.Token
		})
	}
	wg.Wait()
	return tokens, first
}
