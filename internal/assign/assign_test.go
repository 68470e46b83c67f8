package assign

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"lobby/internal/jobs"
	"lobby/internal/lobby"
	"lobby/internal/store"
	"lobby/internal/store/pgtest"
	"lobby/internal/store/postgres"
	"lobby/internal/store/sqlite"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// stores runs fn as a subtest on each store.
func stores(t *testing.T, fn func(t *testing.T, st store.Store)) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "lobby.db"), quiet)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		fn(t, st)
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		st, err := postgres.Open(context.Background(), pgtest.URL(t), quiet)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		fn(t, st)
	})
}

// recQueue records what the engine enqueues; workers are not under test here.
type recQueue struct {
	mu  sync.Mutex
	ops []string
}

func (q *recQueue) Power(_ context.Context, id, op string) (jobs.Job, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.ops = append(q.ops, op+" "+id)
	return jobs.Job{ID: fmt.Sprint(len(q.ops))}, nil
}

func (q *recQueue) Provision(_ context.Context, id, tmpl string) (jobs.Job, error) {
	return q.Power(context.Background(), id, "provision")
}

func (q *recQueue) list() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]string(nil), q.ops...)
}

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.now = c.now.Add(d) }
func (c *clock) Set(t time.Time)     { c.mu.Lock(); defer c.mu.Unlock(); c.now = t }

type fixture struct {
	st    store.Store
	svc   *Service
	q     *recQueue
	clock *clock
	host  *lobby.Host
	pool  *lobby.Pool
	pol   *lobby.Policy
}

// setup makes a host, a pool of n running desktops and a policy for
// everyone shaped by edit.
func setup(t *testing.T, st store.Store, n int, edit func(*lobby.Policy)) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{st: st, q: &recQueue{}, clock: &clock{now: time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)}}
	f.svc = &Service{Store: st, Queue: f.q, Logger: quiet, Now: f.clock.Now}
	f.host = &lobby.Host{Name: "h1", Provider: "memory", State: lobby.HostUp, Created: f.clock.Now()}
	must(t, st.UpsertHost(ctx, f.host))
	f.pool = &lobby.Pool{Name: "p", MaxSize: max(n, 1), NamePattern: "p-{n}"}
	must(t, f.pool.Validate())
	must(t, st.CreatePool(ctx, f.pool))
	for i := 1; i <= n; i++ {
		d := &lobby.Desktop{Name: lobby.DesktopName(f.pool.NamePattern, i), HostID: f.host.ID, PoolID: f.pool.ID, Power: lobby.PowerRunning, ConsoleKind: "vnc", Tags: []string{}}
		must(t, st.CreateDesktop(ctx, d))
	}
	f.pol = &lobby.Policy{Name: "everyone", Pools: []string{f.pool.ID}, Users: []string{"*"}, Release: lobby.ReleasePlan{OnLogoff: true}}
	if edit != nil {
		edit(f.pol)
	}
	must(t, f.pol.Validate())
	must(t, st.CreatePolicy(ctx, f.pol))
	return f
}

func (f *fixture) user(t *testing.T, name string, groups ...string) *lobby.User {
	t.Helper()
	u := &lobby.User{Username: name, Role: lobby.RoleUser, Groups: append([]string{}, groups...)}
	must(t, f.st.CreateUser(context.Background(), u, "x"))
	return u
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestConnectConcurrentNeverSharesADesktop(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, st store.Store) {
		const desktops, people = 10, 30
		f := setup(t, st, desktops, nil)
		users := make([]*lobby.User, people)
		for i := range users {
			users[i] = f.user(t, fmt.Sprintf("u%02d", i))
		}
		var mu sync.Mutex
		got := map[string]string{} // desktop → user
		conflicts := 0
		var wg sync.WaitGroup
		for _, u := range users {
			wg.Add(1)
			go func() {
				defer wg.Done()
				g, err := f.svc.Connect(context.Background(), u, "p")
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					if other, dup := got[g.Desktop.ID]; dup {
						t.Errorf("desktop %s handed to %s and %s", g.Desktop.Name, other, u.Username)
					}
					got[g.Desktop.ID] = u.Username
				case lobby.ErrorKind(err) == lobby.KindConflict:
					conflicts++
				default:
					t.Errorf("connect %s: %v", u.Username, err)
				}
			}()
		}
		wg.Wait()
		if len(got) != desktops || conflicts != people-desktops {
			t.Fatalf("%d assigned, %d refused; want %d and %d", len(got), conflicts, desktops, people-desktops)
		}
		as, err := st.ListAssignments(context.Background(), store.AssignmentFilter{PoolID: f.pool.ID})
		must(t, err)
		if len(as) != desktops {
			t.Fatalf("store holds %d assignments, want %d", len(as), desktops)
		}
	})
}

func TestConnectSameUserConcurrentKeepsPolicyLimit(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		f := setup(t, st, 3, func(p *lobby.Policy) { p.MaxDesktops = 2 })
		// Two more pools under the same policy.
		for _, name := range []string{"q", "r"} {
			p := &lobby.Pool{Name: name, MaxSize: 3}
			must(t, p.Validate())
			must(t, st.CreatePool(ctx, p))
			for i := 1; i <= 3; i++ {
				must(t, st.CreateDesktop(ctx, &lobby.Desktop{Name: lobby.DesktopName(p.NamePattern, i), HostID: f.host.ID, PoolID: p.ID, Power: lobby.PowerRunning, Tags: []string{}}))
			}
			f.pol.Pools = append(f.pol.Pools, p.ID)
		}
		must(t, st.UpdatePolicy(ctx, f.pol))
		u := f.user(t, "alice")
		var wg sync.WaitGroup
		var mu sync.Mutex
		ok := 0
		for range 4 {
			for _, pool := range []string{"p", "q", "r"} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if _, err := f.svc.Connect(ctx, u, pool); err == nil {
						mu.Lock()
						ok++
						mu.Unlock()
					}
				}()
			}
		}
		wg.Wait()
		as, err := st.ListAssignments(ctx, store.AssignmentFilter{UserID: u.ID})
		must(t, err)
		if len(as) != 2 {
			t.Fatalf("alice holds %d desktops, policy allows 2", len(as))
		}
		if ok < 2 {
			t.Fatalf("only %d connects succeeded", ok)
		}
	})
}

func TestConnectRefusals(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		f := setup(t, st, 1, func(p *lobby.Policy) { p.Users = nil; p.Groups = []string{"staff"} })
		outsider := f.user(t, "eve")
		if _, err := f.svc.Connect(ctx, outsider, "p"); lobby.ErrorKind(err) != lobby.KindForbidden {
			t.Fatalf("no policy: got %v, want forbidden", err)
		}
		staff := f.user(t, "bob", "staff")
		if _, err := f.svc.Connect(ctx, staff, "nope"); lobby.ErrorKind(err) != lobby.KindNotFound {
			t.Fatalf("unknown pool: got %v, want not found", err)
		}
		if _, err := f.svc.Connect(ctx, staff, "p"); err != nil {
			t.Fatal(err)
		}
		other := f.user(t, "carol", "staff")
		_, err := f.svc.Connect(ctx, other, "p")
		if lobby.ErrorKind(err) != lobby.KindConflict {
			t.Fatalf("exhausted: got %v, want conflict", err)
		}
		t.Logf("exhausted message: %v", err)
	})
}

func TestPersistentGivesTheSameDesktopBack(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		f := setup(t, st, 3, func(p *lobby.Policy) {
			p.Mode = lobby.Persistent
			p.Release = lobby.ReleasePlan{OnLogoff: false}
			p.PowerPlan = lobby.PowerSuspend
		})
		u := f.user(t, "alice")
		g1, err := f.svc.Connect(ctx, u, "p")
		must(t, err)
		released, _, err := f.svc.Logoff(ctx, u, g1.Desktop.ID)
		must(t, err)
		if released {
			t.Fatal("a persistent plan without release on logoff released the assignment")
		}
		g2, err := f.svc.Connect(ctx, u, "p")
		must(t, err)
		if g2.Desktop.ID != g1.Desktop.ID || !g2.Reused {
			t.Fatalf("got desktop %s, want the same %s", g2.Desktop.Name, g1.Desktop.Name)
		}
	})
}

func TestLogoffRunsTheReleasePlan(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		f := setup(t, st, 1, func(p *lobby.Policy) { p.PowerPlan = lobby.PowerStop })
		u := f.user(t, "alice")
		g, err := f.svc.Connect(ctx, u, "p")
		must(t, err)
		stranger := f.user(t, "mallory")
		if _, _, err := f.svc.Logoff(ctx, stranger, g.Desktop.ID); lobby.ErrorKind(err) != lobby.KindForbidden {
			t.Fatalf("someone else's logoff: got %v, want forbidden", err)
		}
		released, d, err := f.svc.Logoff(ctx, u, g.Desktop.ID)
		must(t, err)
		if !released || d.AssignedTo != "" {
			t.Fatalf("released=%v assigned_to=%q; want released and free", released, d.AssignedTo)
		}
		if ops := f.q.list(); len(ops) != 1 || ops[0] != "stop "+g.Desktop.ID {
			t.Fatalf("queued %v, want the power plan's stop", ops)
		}
		if d.Power != lobby.PowerStopping {
			t.Fatalf("power %s, want stopping", d.Power)
		}
	})
}

func TestReleaseAfterDisconnect(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		f := setup(t, st, 1, func(p *lobby.Policy) { p.Release = lobby.ReleasePlan{DisconnectMinutes: 30} })
		u := f.user(t, "alice")
		g, err := f.svc.Connect(ctx, u, "p")
		must(t, err)
		// Connected for two hours: nothing is released.
		must(t, st.SetConnected(ctx, g.Assignment.ID, true, f.clock.Now()))
		f.clock.Add(2 * time.Hour)
		if n, err := f.svc.ReleaseDue(ctx); err != nil || n != 0 {
			t.Fatalf("connected: released %d (%v), want 0", n, err)
		}
		must(t, st.SetConnected(ctx, g.Assignment.ID, false, f.clock.Now()))
		f.clock.Add(29 * time.Minute)
		if n, err := f.svc.ReleaseDue(ctx); err != nil || n != 0 {
			t.Fatalf("29 min disconnected: released %d (%v), want 0", n, err)
		}
		f.clock.Add(time.Minute)
		if n, err := f.svc.ReleaseDue(ctx); err != nil || n != 1 {
			t.Fatalf("30 min disconnected: released %d (%v), want 1", n, err)
		}
		if as, _ := st.ListAssignments(ctx, store.AssignmentFilter{UserID: u.ID}); len(as) != 0 {
			t.Fatalf("assignment still there: %+v", as)
		}
	})
}

func TestReleaseAtTimeOfDay(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		f := setup(t, st, 2, func(p *lobby.Policy) { p.Release = lobby.ReleasePlan{AtTime: "19:30"} })
		day := func(d, h, m int) time.Time { return time.Date(2026, 11, d, h, m, 0, 0, time.UTC) }
		alice, bob := f.user(t, "alice"), f.user(t, "bob")
		f.clock.Set(day(2, 10, 0))
		_, err := f.svc.Connect(ctx, alice, "p")
		must(t, err)
		steps := []struct {
			at   time.Time
			want int
		}{
			{day(2, 19, 29), 0}, // before the time: kept
			{day(2, 19, 30), 1}, // alice's assignment from the morning goes
		}
		for _, s := range steps {
			f.clock.Set(s.at)
			if n, err := f.svc.ReleaseDue(ctx); err != nil || n != s.want {
				t.Fatalf("at %s released %d (%v), want %d", s.at.Format(time.Kitchen), n, err, s.want)
			}
		}
		f.clock.Set(day(2, 19, 45)) // bob arrives after the release time
		_, err = f.svc.Connect(ctx, bob, "p")
		must(t, err)
		for _, s := range []struct {
			at   time.Time
			want int
		}{{day(2, 23, 0), 0}, {day(3, 8, 0), 0}, {day(3, 19, 30), 1}} {
			f.clock.Set(s.at)
			if n, err := f.svc.ReleaseDue(ctx); err != nil || n != s.want {
				t.Fatalf("at %s released %d (%v), want %d", s.at, n, err, s.want)
			}
		}
	})
}

func TestStockKeepsPoolsFilled(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		f := setup(t, st, 0, nil)
		f.pool.MinSize, f.pool.MinFree, f.pool.MaxSize = 2, 3, 4
		must(t, st.UpdatePool(ctx, f.pool))
		if err := f.svc.Stock(ctx, f.pool.ID, nil); lobby.ErrorKind(err) != lobby.KindUnavailable {
			t.Fatalf("no host: got %v, want unavailable", err)
		}
		must(t, f.svc.Stock(ctx, f.pool.ID, []string{f.host.ID}))
		c, err := st.PoolCounts(ctx, f.pool.ID)
		must(t, err)
		if c.Total != 3 || c.Pending != 3 {
			t.Fatalf("after stocking: %+v, want 3 pending (min free 3)", c)
		}
		// A second pass while they are being created adds nothing.
		must(t, f.svc.Stock(ctx, f.pool.ID, []string{f.host.ID}))
		if c, _ := st.PoolCounts(ctx, f.pool.ID); c.Total != 3 {
			t.Fatalf("second pass made %d desktops, want 3", c.Total)
		}
		// All three are taken: one more is made, never beyond max size 4.
		ds, err := st.ListDesktops(ctx, store.DesktopFilter{PoolID: f.pool.ID}, store.ListOptions{})
		must(t, err)
		for i, d := range ds {
			must(t, st.SetDesktopPower(ctx, d.ID, lobby.PowerRunning, 0))
			u := f.user(t, fmt.Sprintf("u%d", i))
			_, err := f.svc.Connect(ctx, u, "p")
			must(t, err)
		}
		must(t, f.svc.Stock(ctx, f.pool.ID, []string{f.host.ID}))
		must(t, f.svc.Stock(ctx, f.pool.ID, []string{f.host.ID}))
		if c, _ := st.PoolCounts(ctx, f.pool.ID); c.Total != 4 {
			t.Fatalf("pool has %d desktops, want max size 4", c.Total)
		}
		provisions := 0
		for _, op := range f.q.list() {
			if len(op) > 9 && op[:9] == "provision" {
				provisions++
			}
		}
		if provisions != 4 {
			t.Fatalf("%d provisions queued, want 4", provisions)
		}
	})
}

// TestStockStartsIdleBeforeCreating: free desktops that are suspended or
// stopped are started (suspended first) before new ones are made.
func TestStockStartsIdleBeforeCreating(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		f := setup(t, st, 1, nil) // p-1 running
		f.pool.MinSize, f.pool.MinFree, f.pool.MaxSize = 1, 2, 4
		must(t, st.UpdatePool(ctx, f.pool))
		idle := map[lobby.PowerState]*lobby.Desktop{}
		for i, power := range []lobby.PowerState{lobby.PowerStopped, lobby.PowerSuspended} {
			d := &lobby.Desktop{Name: fmt.Sprintf("p-%d", i+2), HostID: f.host.ID, PoolID: f.pool.ID, Power: power, ConsoleKind: "vnc", Tags: []string{}}
			must(t, st.CreateDesktop(ctx, d))
			idle[power] = d
		}
		hosts := []string{f.host.ID}
		must(t, f.svc.Stock(ctx, f.pool.ID, hosts))
		if got, want := f.q.list(), []string{"resume " + idle[lobby.PowerSuspended].ID}; !slices.Equal(got, want) {
			t.Fatalf("min free 2 with 1 running: queued %v, want %v", got, want)
		}
		must(t, f.svc.Stock(ctx, f.pool.ID, hosts)) // the one starting counts
		if n := len(f.q.list()); n != 1 {
			t.Fatalf("a second pass queued %v", f.q.list())
		}
		f.pool.MinFree = 4
		must(t, st.UpdatePool(ctx, f.pool))
		must(t, f.svc.Stock(ctx, f.pool.ID, hosts))
		ops := f.q.list()[1:]
		if len(ops) != 2 || ops[0] != "start "+idle[lobby.PowerStopped].ID || !strings.HasPrefix(ops[1], "provision ") {
			t.Fatalf("min free 4 with 2 ready and 1 stopped: queued %v, want a start then one provision", ops)
		}
		if c, _ := st.PoolCounts(ctx, f.pool.ID); c.Total != 4 || c.Ready != 4 {
			t.Fatalf("counts %+v, want 4 desktops, all ready", c)
		}
	})
}

// TestManagerPassDeletesExpired: the pool manager's pass deletes expired
// console tickets and API tokens.
func TestManagerPassDeletesExpired(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		f := setup(t, st, 1, nil)
		u := f.user(t, "u")
		ds, err := st.ListDesktops(ctx, store.DesktopFilter{PoolID: f.pool.ID}, store.ListOptions{})
		must(t, err)
		now := f.clock.Now()
		for hash, exp := range map[string]time.Time{"old": now.Add(-time.Second), "new": now.Add(time.Minute)} {
			must(t, st.CreateTicket(ctx, &store.Ticket{Hash: "tk-" + hash, UserID: u.ID, DesktopID: ds[0].ID, Created: now.Add(-time.Hour), Expires: exp}))
			must(t, st.CreateToken(ctx, &store.Token{Hash: "tok-" + hash, UserID: u.ID, Name: "login", Created: now.Add(-time.Hour), Expires: exp}))
		}
		NewManager(f.svc, func(context.Context) []string { return nil }).Pass(ctx)
		if _, err := st.GetToken(ctx, "tok-old"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("expired token: %v, want deleted", err)
		}
		must(t, func() error { _, err := st.GetToken(ctx, "tok-new"); return err }())
		if _, err := st.RedeemTicket(ctx, "tk-new", now); err != nil {
			t.Fatalf("live ticket: %v", err)
		}
		n, err := st.DeleteExpiredTickets(ctx, now)
		must(t, err)
		if n != 0 {
			t.Fatalf("%d expired tickets were left by the pass", n)
		}
	})
}
