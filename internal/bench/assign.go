package bench

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime/trace"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// AssignConfig configures RunAssign.
type AssignConfig struct {
	Node        NodeConfig
	Users       int           // users signed in beforehand; at least Concurrency
	Desktops    int           // pool size; at least Concurrency or connects are refused
	Concurrency int           // client goroutines
	Duration    time.Duration // measured phase
	Warmup      time.Duration // unmeasured phase before it
	CPUProfile  string        // write the measured phase's CPU profile here
	Trace       string        // write an execution trace of the measured phase here
	// MaxOps bounds the connect+release cycles of the measured phase.
	MaxOps int
	Log    io.Writer // progress lines; nil is silent
}

func (c *AssignConfig) defaults() error {
	setDefault(&c.Users, 256)
	setDefault(&c.Desktops, 64)
	setDefault(&c.Concurrency, 16)
	setDefault(&c.MaxOps, 10_000_000)
	if c.Duration <= 0 {
		c.Duration = 10 * time.Second
	}
	if c.Warmup < 0 {
		c.Warmup = 0
	}
	if c.Users < c.Concurrency {
		return fmt.Errorf("--users %d is fewer than --concurrency %d: each client needs users of its own", c.Users, c.Concurrency)
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	return nil
}

func setDefault(v *int, def int) {
	if *v <= 0 {
		*v = def
	}
}

// AssignResult is the outcome of RunAssign.
type AssignResult struct {
	Machine   Machine
	Config    AssignConfig
	StoreInfo string
	Setup     time.Duration

	Elapsed     time.Duration
	Assignments int // connects answered 200
	Refused     int // connects answered 409 (pool exhausted)
	Errors      int
	FirstError  string
	Connect     Summary
	Release     Summary

	MemStart, MemSetup, MemAfter Mem
	CPU                          *CPUReport

	// WriterWaits and WriterWait are how often and how long requests
	// waited for SQLite's one writer connection (database/sql DBStats).
	WriterWaits int64
	WriterWait  time.Duration
	// Groups and GroupedTxs: database transactions of SQLite's group
	// committer and the transactions and single writes they held.
	Groups, GroupedTxs uint64
}

// groupStats returns the store's group commit counters (SQLite).
func groupStats(n *Node) (groups, txs uint64) {
	if g, ok := n.Server.Store.(interface{ GroupStats() (uint64, uint64) }); ok {
		return g.GroupStats()
	}
	return 0, 0
}

// writerStats returns the pool statistics of the store's writer
// connection when it has one (SQLite), nil otherwise.
func writerStats(n *Node) *sql.DBStats {
	w, ok := n.Server.Store.(interface{ Writer() *sql.DB })
	if !ok {
		return nil
	}
	st := w.Writer().Stats()
	return &st
}

// Rate is assignments per second of the measured phase.
func (r *AssignResult) Rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Assignments) / r.Elapsed.Seconds()
}

// RunAssign starts a node with a pool of Desktops free desktops and Users
// signed-in users, then runs Concurrency clients that each loop
// POST /api/v1/connect then POST /api/v1/release over keep-alive HTTP.
func RunAssign(ctx context.Context, cfg AssignConfig) (_ *AssignResult, err error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	res := &AssignResult{Machine: ReadMachine(), Config: cfg, MemStart: SelfMem()}
	t0 := time.Now()
	node, err := StartNode(ctx, cfg.Node)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, node.Close()) }()
	res.StoreInfo = node.StoreInfo
	fmt.Fprintf(cfg.Log, "assign: node at %s; provisioning %d desktops\n", node.URL, cfg.Desktops)
	if err := node.MakePool(ctx, "bench", cfg.Desktops, 5*time.Minute); err != nil {
		return nil, err
	}
	const pw = "bench password 1"
	names, err := node.CreateUsers(ctx, "assign", cfg.Users, pw)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(cfg.Log, "assign: signing in %d users\n", cfg.Users)
	tokens, err := node.IssueTokens(ctx, names)
	if err != nil {
		return nil, err
	}
	res.Setup, res.MemSetup = time.Since(t0), SelfMem()

	l := &assignLoad{url: node.URL, tokens: tokens, hc: NewHTTPClient(cfg.Concurrency), c: cfg.Concurrency}
	if cfg.Warmup > 0 {
		fmt.Fprintf(cfg.Log, "assign: warming up for %s\n", cfg.Warmup)
		l.run(ctx, cfg.Warmup, cfg.MaxOps)
	}
	fmt.Fprintf(cfg.Log, "assign: measuring for %s with %d clients\n", cfg.Duration, cfg.Concurrency)
	prof, err := StartProfile(cfg.CPUProfile)
	if err != nil {
		return nil, err
	}
	stopTrace, err := startTrace(cfg.Trace)
	if err != nil {
		return nil, err
	}
	w0 := writerStats(node)
	g0, x0 := groupStats(node)
	ph := l.run(ctx, cfg.Duration, cfg.MaxOps)
	stopTrace()
	g1, x1 := groupStats(node)
	res.Groups, res.GroupedTxs = g1-g0, x1-x0
	res.CPU, err = prof.Stop()
	if w1 := writerStats(node); w1 != nil && w0 != nil {
		res.WriterWaits, res.WriterWait = w1.WaitCount-w0.WaitCount, w1.WaitDuration-w0.WaitDuration
	}
	if err != nil {
		return nil, err
	}
	res.MemAfter = SelfMem()
	res.Elapsed = ph.elapsed
	res.Assignments, res.Refused, res.Errors, res.FirstError = ph.ok, ph.refused, ph.errors, ph.firstErr
	res.Connect, res.Release = Summarize(ph.connect), Summarize(ph.release)
	if res.Assignments == 0 {
		return res, fmt.Errorf("assign: no connect succeeded: %s", res.FirstError)
	}
	return res, ctx.Err()
}

// assignLoad is the client side of RunAssign. Client i uses users i,
// i+c, i+2c, ... in turn, so no two clients act for one user.
type assignLoad struct {
	url    string
	tokens []string
	hc     *http.Client
	c      int
	// retry sends a request once more, as a client behind a load
	// balancer does, when the network or the server failed it (no
	// answer, or 5xx).
	retry bool
}

type assignPhase struct {
	elapsed             time.Duration
	ok, refused, errors int
	// retried requests were sent a second time; retriedOK of them
	// succeeded then.
	retried, retriedOK int
	firstErr           string
	connect, release   []time.Duration
	mu                 sync.Mutex
}

func (l *assignLoad) run(ctx context.Context, d time.Duration, maxOps int) *assignPhase {
	ph := &assignPhase{}
	var ops atomic.Int64
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for w := range l.c {
		wg.Go(func() { l.client(ctx, w, ph, &ops, int64(maxOps)) })
	}
	wg.Wait()
	ph.elapsed = time.Since(start)
	return ph
}

func (l *assignLoad) client(ctx context.Context, w int, ph *assignPhase, ops *atomic.Int64, maxOps int64) {
	var connect, release []time.Duration
	ok, refused, errs := 0, 0, 0
	var retries [2]int // sent again, succeeded then
	var firstErr error
	connectURL, releaseURL := l.url+"/api/v1/connect", l.url+"/api/v1/release"
	body := []byte(`{"pool":"bench"}`)
	// Requests get a context of their own: the phase's deadline stops the
	// loop between requests, never in the middle of one.
	rctx := context.WithoutCancel(ctx)
	for u := w; ctx.Err() == nil && ops.Add(1) <= maxOps; u += l.c {
		tok := l.tokens[u%len(l.tokens)]
		var g struct{ Desktop struct{ ID string } }
		t := time.Now()
		status, err := l.call(rctx, connectURL, tok, body, &g, &retries)
		connect = append(connect, time.Since(t))
		switch {
		case err == nil:
			ok++
		case status == http.StatusConflict:
			refused++
			continue
		default:
			errs++
			firstErr = firstOf(firstErr, err)
			continue
		}
		t = time.Now()
		// A retried release answered 403 (not held) had gone through.
		_, err = l.call(rctx, releaseURL, tok, fmt.Appendf(nil, `{"desktop":%q}`, g.Desktop.ID), nil, &retries, http.StatusForbidden)
		release = append(release, time.Since(t))
		if err != nil {
			errs++
			firstErr = firstOf(firstErr, err)
		}
	}
	ph.mu.Lock()
	defer ph.mu.Unlock()
	ph.connect, ph.release = append(ph.connect, connect...), append(ph.release, release...)
	ph.ok, ph.refused, ph.errors = ph.ok+ok, ph.refused+refused, ph.errors+errs
	ph.retried, ph.retriedOK = ph.retried+retries[0], ph.retriedOK+retries[1]
	if firstErr != nil && ph.firstErr == "" {
		ph.firstErr = firstErr.Error()
	}
}

// call POSTs body to url; with l.retry, a request the network or the
// server failed is sent once more after 200 ms (as the cluster test's
// client does), counted in retries[0], and in retries[1] when it then
// succeeds. A status in done answering the retry means the first attempt
// had gone through: success.
func (l *assignLoad) call(ctx context.Context, url, token string, body []byte, out any, retries *[2]int, done ...int) (int, error) {
	status, err := call(ctx, l.hc, "POST", url, token, body, out)
	if !l.retry || err == nil || (status > 0 && status < 500) {
		return status, err
	}
	retries[0]++
	time.Sleep(200 * time.Millisecond)
	status, err = call(ctx, l.hc, "POST", url, token, body, out)
	if err != nil && slices.Contains(done, status) {
		err = nil
	}
	if err == nil {
		retries[1]++
	}
	return status, err
}

// firstOf keeps the first error.
func firstOf(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// startTrace writes an execution trace (go tool trace FILE) until stop;
// nothing when path is empty.
func startTrace(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := trace.Start(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { trace.Stop(); f.Close() }, nil
}
