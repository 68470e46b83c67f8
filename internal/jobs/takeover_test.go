package jobs_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"lobby/internal/hostconn"
	"lobby/internal/jobs"
	"lobby/internal/lobby"
	"lobby/internal/provider"
	"lobby/internal/provider/memory"
	"lobby/internal/store"
	"lobby/internal/store/pgtest"
	"lobby/internal/store/postgres"
	"lobby/internal/store/sqlite"
)

var quiet = slog.New(slog.DiscardHandler)

// dbAt opens a store handle on a database: each node of a test has its
// own, as each process would, so that closing it is a node's crash as the
// database sees it.
type dbAt struct{ dialect, where string }

func newDB(t *testing.T, dialect string) dbAt {
	if dialect == store.Postgres {
		return dbAt{dialect, pgtest.URL(t)}
	}
	return dbAt{dialect, filepath.Join(t.TempDir(), "lobby.db")}
}

// open opens a handle and returns it with its close, which the test may
// call early (a crash) and the cleanup calls again harmlessly.
func (d dbAt) open(t *testing.T) (store.Store, func()) {
	t.Helper()
	var st store.Store
	var err error
	if d.dialect == store.Postgres {
		st, err = postgres.Open(t.Context(), d.where, quiet)
	} else {
		st, err = sqlite.Open(t.Context(), d.where, quiet)
	}
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	closeIt := func() { once.Do(func() { st.Close() }) }
	t.Cleanup(closeIt)
	return st, closeIt
}

// gated is a memory provider whose starts each wait until the test lets
// them go: a slow host, to catch a job while it runs.
type gated struct {
	*memory.Provider
	starts  chan chan struct{} // each start sends its gate
	started atomic.Int32
}

func newGated(t *testing.T) *gated {
	p, err := memory.New(memory.Config{Width: 16, Height: 16})
	if err != nil {
		t.Fatal(err)
	}
	return &gated{Provider: p, starts: make(chan chan struct{}, 8)}
}

func (g *gated) Start(ctx context.Context, name string) (provider.Desktop, error) {
	g.started.Add(1)
	gate := make(chan struct{})
	g.starts <- gate
	select {
	case <-gate:
	case <-ctx.Done():
		return provider.Desktop{}, ctx.Err()
	}
	return g.Provider.Start(ctx, name)
}

// next waits for the next start to reach the host and returns its gate.
func (g *gated) next(t *testing.T) chan struct{} {
	t.Helper()
	select {
	case gate := <-g.starts:
		return gate
	case <-time.After(30 * time.Second):
		t.Fatal("no start reached the host")
		return nil
	}
}

// cluster is a store with a host, a desktop on it, and nodes whose
// heartbeats the test drives.
type cluster struct {
	t       *testing.T
	db      dbAt
	st      store.Store // the test's own handle
	host    *lobby.Host
	desktop *lobby.Desktop
	prov    *gated

	mu      sync.Mutex
	beating map[int]string // site → instance
}

func newCluster(t *testing.T, dialect string) *cluster {
	t.Helper()
	ctx := t.Context()
	c := &cluster{t: t, db: newDB(t, dialect), prov: newGated(t), beating: map[int]string{}}
	c.st, _ = c.db.open(t)
	c.host = &lobby.Host{Name: "h1", Provider: "memory", State: lobby.HostUp, SiteID: 1, LastSeen: time.Now(), Created: time.Now()}
	if err := c.st.UpsertHost(ctx, c.host); err != nil {
		t.Fatal(err)
	}
	if _, err := c.prov.Create(ctx, provider.Spec{Name: "d1"}); err != nil {
		t.Fatal(err)
	}
	c.desktop = &lobby.Desktop{Name: "d1", HostID: c.host.ID, Power: lobby.PowerStopped, ConsoleKind: "vnc", Tags: []string{}}
	if err := c.st.CreateDesktop(ctx, c.desktop); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); c.beat(done) }()
	t.Cleanup(func() { close(done); wg.Wait() })
	return c
}

// beat keeps the registered nodes' heartbeats going, as their members
// would.
func (c *cluster) beat(done chan struct{}) {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return
		case <-tick.C:
		}
		c.mu.Lock()
		for site, inst := range c.beating {
			_, _ = c.st.Heartbeat(context.Background(), site, inst, time.Now())
		}
		c.mu.Unlock()
	}
}

// node registers a node's row and beats for it until kill.
func (c *cluster) node(site int, instance string) {
	c.t.Helper()
	n := &lobby.Node{SiteID: site, Name: "node-" + instance, Started: time.Now(), Heartbeat: time.Now()}
	if err := c.st.RegisterNode(c.t.Context(), n, instance, time.Now().Add(time.Hour)); err != nil {
		c.t.Fatal(err)
	}
	c.mu.Lock()
	c.beating[site] = instance
	c.mu.Unlock()
}

// kill stops a node's heartbeat without a goodbye, as a crash does.
func (c *cluster) kill(site int) {
	c.mu.Lock()
	delete(c.beating, site)
	c.mu.Unlock()
}

// node is one node's work queue on its own store handle.
type node struct {
	*jobs.Queue
	crash func() // closes its store handle
}

// opts are a test node's: whether it reaches the host, leads, is fenced,
// and whether the test starts it itself.
type opts struct {
	reach, later   bool
	leader, fenced *atomic.Bool
}

// queue starts a work queue for site (one process instance).
func (c *cluster) queue(site int, instance string, o opts) node {
	c.t.Helper()
	hosts := hostconn.NewRegistry()
	if o.reach {
		hosts.Set(c.host.ID, hostconn.Local{P: c.prov})
	}
	if o.leader == nil {
		o.leader = on(false)
	}
	if o.fenced == nil {
		o.fenced = on(false)
	}
	st, closeIt := c.db.open(c.t)
	q, err := jobs.New(jobs.Config{Store: st, Hosts: hosts, SiteID: site, Instance: instance, Logger: quiet,
		// Heartbeats every 50 ms: a takeover 2 s after the last one is
		// far from any beat a loaded machine delays.
		PollInterval: 20 * time.Millisecond, TakeoverAfter: 2 * time.Second, ScanEvery: 50 * time.Millisecond,
		Leader: o.leader.Load, Fenced: o.fenced.Load})
	if err != nil {
		c.t.Fatal(err)
	}
	if !o.later {
		if err := q.Start(c.t.Context()); err != nil {
			c.t.Fatal(err)
		}
	}
	c.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = q.Stop(ctx)
	})
	return node{q, closeIt}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func job(t *testing.T, q node, id string) jobs.Job {
	t.Helper()
	j, err := q.Get(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func on(b bool) *atomic.Bool {
	var a atomic.Bool
	a.Store(b)
	return &a
}

// TestTakeoverOfADeadNode: node 1 runs a job that blocks on its host and
// stops beating; the leader (node 2) puts the job back, node 2 runs it,
// and node 1's late finish, while node 2's attempt runs, changes nothing.
func TestTakeoverOfADeadNode(t *testing.T) {
	t.Parallel()
	for _, dialect := range []string{store.SQLite, store.Postgres} {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			c := newCluster(t, dialect)
			c.node(1, "ins_a")
			c.node(2, "ins_b")
			a := c.queue(1, "ins_a", opts{reach: true})
			b := c.queue(2, "ins_b", opts{reach: true, leader: on(true)})

			j, err := a.Power(t.Context(), c.desktop.ID, "start")
			if err != nil {
				t.Fatal(err)
			}
			if j.Site != 1 {
				t.Fatalf("job owned by site %d, want 1 (its host is linked to node 1)", j.Site)
			}
			first := c.prov.next(t) // node 1's attempt is on the host
			// Node 1 stops beating (a long pause: it will come back).
			c.kill(1)
			second := c.prov.next(t) // node 2's attempt is on the host
			running := job(t, b, j.ID)
			if running.State != "running" || running.SiteID != 2 || running.Site != 2 || running.Attempt != 2 {
				t.Fatalf("after the takeover: %+v, want running on site 2, owned by site 2, attempt 2", running)
			}
			if len(running.TakenOver) != 1 || running.TakenOver[0].From != 1 || running.TakenOver[0].To != 2 || !running.TakenOver[0].Running {
				t.Fatalf("takeovers = %+v, want one from site 1 to 2 of a running job", running.TakenOver)
			}

			// Node 1 was only slow: it finishes its attempt now. Its
			// finish must not end node 2's.
			close(first)
			time.Sleep(500 * time.Millisecond) // node 1's completer writes within this (no event to wait on: it changes nothing)
			if again := job(t, b, j.ID); again.State != "running" || again.Attempt != 2 {
				t.Fatalf("node 1's late finish overwrote node 2's attempt: %+v", again)
			}
			close(second)
			eventually(t, "node 2 completes the job", func() bool { return job(t, b, j.ID).State == "completed" })
			done := job(t, b, j.ID)
			if done.SiteID != 2 || done.Result != "running" || len(done.Errors) != 0 {
				t.Fatalf("completed job = %+v, want run by site 2 with result running and no errors", done)
			}
			d, err := c.st.GetDesktop(t.Context(), c.desktop.ID)
			if err != nil || d.Power != lobby.PowerRunning {
				t.Fatalf("desktop = %+v, %v; want running", d, err)
			}
			evs, err := c.st.ListAudit(t.Context(), store.AuditFilter{Query: "jobs.takeover"})
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) != 1 || evs[0].Actor != "system" || !strings.Contains(evs[0].Detail, "job "+j.ID+" to site 2") {
				t.Fatalf("audit = %+v, want one takeover by the system naming job %s", evs, j.ID)
			}
		})
	}
}

// TestRestartTakesItsRunningJobBack: a node restarted after a crash (a new
// process on the same site ID) runs again at once what the crashed process
// was running, without waiting for the takeover timeout.
func TestRestartTakesItsRunningJobBack(t *testing.T) {
	t.Parallel()
	c := newCluster(t, store.SQLite)
	c.node(1, "ins_old")
	old := c.queue(1, "ins_old", opts{reach: true, leader: on(true)})
	j, err := old.Power(t.Context(), c.desktop.ID, "start")
	if err != nil {
		t.Fatal(err)
	}
	first := c.prov.next(t)
	// The crash: the old process's database handle and heartbeat are
	// gone; its attempt never finishes.
	c.kill(1)
	old.crash()
	c.node(1, "ins_new")
	fresh := c.queue(1, "ins_new", opts{reach: true, leader: on(true)})
	second := c.prov.next(t)
	got := job(t, fresh, j.ID)
	if got.State != "running" || got.Site != 1 || got.Attempt != 2 || len(got.TakenOver) != 1 || got.TakenOver[0].From != 1 {
		t.Fatalf("after the restart: %+v, want running again in site 1's queue at attempt 2, taken over once", got)
	}
	close(second)
	eventually(t, "the new process completes the job", func() bool { return job(t, fresh, j.ID).State == "completed" })
	close(first) // let the frozen goroutine end
}

// TestHandOverToTheLinkHolder: a job waiting in node 1's queue whose host
// has moved to node 2 is handed over to node 2 without spending an
// attempt; a job enqueued afterwards goes to node 2 directly.
func TestHandOverToTheLinkHolder(t *testing.T) {
	t.Parallel()
	c := newCluster(t, store.SQLite)
	c.node(1, "ins_a")
	c.node(2, "ins_b")
	a := c.queue(1, "ins_a", opts{later: true})
	j, err := a.Power(t.Context(), c.desktop.ID, "start")
	if err != nil {
		t.Fatal(err)
	}
	if j.Site != 1 {
		t.Fatalf("job owned by site %d, want 1", j.Site)
	}
	// Before node 1 works it, the host's link moves to node 2.
	if err := c.st.SetHostState(t.Context(), c.host.ID, lobby.HostUp, 2, time.Now()); err != nil {
		t.Fatal(err)
	}
	b := c.queue(2, "ins_b", opts{reach: true})
	if err := a.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	close(c.prov.next(t))
	eventually(t, "node 2 completes the job", func() bool { return job(t, b, j.ID).State == "completed" })
	if got := job(t, b, j.ID); got.SiteID != 2 || got.Attempt != 1 || got.Site != 2 {
		t.Fatalf("handed over job = %+v, want run by site 2 at attempt 1", got)
	}
	j2, err := a.Power(t.Context(), c.desktop.ID, "stop")
	if err != nil {
		t.Fatal(err)
	}
	if j2.Site != 2 {
		t.Fatalf("a job enqueued on node 1 for a host linked to node 2 is owned by site %d", j2.Site)
	}
	eventually(t, "node 2 completes the stop", func() bool { return job(t, b, j2.ID).State == "completed" })
}

// TestFencedNodeStops: a node whose site ID another process took (its
// member says it is lost) cancels the job it runs at once and takes no
// more; it cannot be started again.
func TestFencedNodeStops(t *testing.T) {
	t.Parallel()
	c := newCluster(t, store.SQLite)
	c.node(1, "ins_a")
	lost := on(false)
	a := c.queue(1, "ins_a", opts{reach: true, leader: on(true), fenced: lost})
	j, err := a.Power(t.Context(), c.desktop.ID, "start")
	if err != nil {
		t.Fatal(err)
	}
	gate := c.prov.next(t)
	defer close(gate)
	lost.Store(true)
	eventually(t, "the node fences itself", a.Fenced)
	eventually(t, "its running job is cancelled", func() bool { return job(t, a, j.ID).State != "running" })
	if err := a.Start(t.Context()); err == nil {
		t.Fatal("a fenced queue started again")
	}
	waiting, err := a.Power(t.Context(), c.desktop.ID, "stop")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // it would have fetched it within a few polls (20 ms)
	if got := job(t, a, waiting.ID); got.State != "available" {
		t.Fatalf("a fenced node fetched job %+v", got)
	}
}

// TestJobsOfADrainingNodeMove: a job waiting for a node that an operator
// drains (it finishes what it runs, takes nothing new) is moved by the
// leader and run by another node; so is one enqueued meanwhile.
func TestJobsOfADrainingNodeMove(t *testing.T) {
	t.Parallel()
	c := newCluster(t, store.SQLite)
	c.node(1, "ins_a")
	c.node(2, "ins_b") // beats, but runs no queue: its jobs wait
	if err := c.st.SetHostState(t.Context(), c.host.ID, lobby.HostUp, 2, time.Now()); err != nil {
		t.Fatal(err)
	}
	a := c.queue(1, "ins_a", opts{reach: true, leader: on(true)}) // reaches the host (a relay would)
	j, err := a.Power(t.Context(), c.desktop.ID, "start")
	if err != nil {
		t.Fatal(err)
	}
	if j.Site != 2 {
		t.Fatalf("job owned by site %d, want 2 (node 2 holds the host's link)", j.Site)
	}
	if err := c.st.SetNodeMode(t.Context(), 2, lobby.NodeDraining); err != nil {
		t.Fatal(err)
	}
	close(c.prov.next(t))
	eventually(t, "node 1 completes the draining node's job", func() bool { return job(t, a, j.ID).State == "completed" })
	if got := job(t, a, j.ID); got.SiteID != 1 || len(got.TakenOver) != 1 || got.TakenOver[0].From != 2 || got.TakenOver[0].Running {
		t.Fatalf("job = %+v, want run by site 1, taken over once from site 2 while waiting", got)
	}
	evs, err := c.st.ListAudit(t.Context(), store.AuditFilter{Query: "jobs.takeover"})
	if err != nil || len(evs) != 1 || !strings.Contains(evs[0].Detail, "is draining") {
		t.Fatalf("audit = %+v, %v; want the takeover with its reason", evs, err)
	}
	j2, err := a.Power(t.Context(), c.desktop.ID, "stop")
	if err != nil {
		t.Fatal(err)
	}
	if j2.Site != 1 {
		t.Fatalf("a job for a host linked to a draining node is owned by site %d, want this node's", j2.Site)
	}
}
