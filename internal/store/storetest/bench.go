package storetest

import (
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"testing"

	"lobby/internal/lobby"
	"lobby/internal/store"
)

// Populate fills s with a realistic spread: pools of perPool desktops on 4
// hosts, of which three quarters are running and free, and the rest
// stopped, starting or assigned to one of 10 users per pool. It returns
// the pools.
func Populate(tb testing.TB, s store.Store, pools, perPool int) []*lobby.Pool {
	tb.Helper()
	return (&fixture{s: s, ctx: tb.Context()}).populate(tb, pools, perPool)
}

func (f *fixture) populate(tb testing.TB, pools, perPool int) []*lobby.Pool {
	tb.Helper()
	s := f.s
	var hosts []*lobby.Host
	for range 4 {
		hosts = append(hosts, f.host(tb))
	}
	var out []*lobby.Pool
	for range pools {
		p := f.pool(tb)
		out = append(out, p)
		var users []*lobby.User
		for range 10 {
			users = append(users, f.user(tb, nil))
		}
		err := s.InTx(f.ctx, func(q store.Queries) error {
			for i := range perPool {
				power := lobby.PowerRunning
				switch i % 8 {
				case 6:
					power = lobby.PowerStopped
				case 7:
					power = lobby.PowerStarting
				}
				d := &lobby.Desktop{Name: fmt.Sprintf("%s-%d", p.Name, i), HostID: hosts[i%len(hosts)].ID,
					PoolID: p.ID, Power: power, ConsoleKind: "vnc", Tags: []string{}}
				if err := q.CreateDesktop(f.ctx, d); err != nil {
					return err
				}
				if i%8 == 5 {
					err := q.AssignDesktop(f.ctx, &lobby.Assignment{DesktopID: d.ID, UserID: users[i%len(users)].ID, Mode: lobby.Persistent})
					if err != nil {
						return err
					}
				}
			}
			return nil
		})
		must(tb, err)
	}
	return out
}

// BenchmarkAssignFree measures AssignFree followed by DeleteAssignment
// (the desktop goes back to the pool), from parallel goroutines, in one
// pool of 1,000 among 10 such pools (see Populate), after analyze (the
// statistics a live database has; nil to skip). It reports assignments/s.
// BENCH_PARALLELISM sets the goroutines per GOMAXPROCS (default 4: the
// store waits on I/O).
func BenchmarkAssignFree(b *testing.B, s store.Store, analyze func(testing.TB)) {
	f := &fixture{s: s, ctx: b.Context()}
	pools := f.populate(b, 10, 1000)
	if analyze != nil {
		analyze(b)
	}
	p := pools[len(pools)/2]
	var users []*lobby.User
	for range 64 {
		users = append(users, f.user(b, nil))
	}
	parallelism := 4
	if v, err := strconv.Atoi(os.Getenv("BENCH_PARALLELISM")); err == nil && v > 0 {
		parallelism = v
	}
	b.SetParallelism(parallelism)
	var next atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		u := users[int(next.Add(1))%len(users)]
		for pb.Next() {
			a := &lobby.Assignment{UserID: u.ID, PoolID: p.ID, Mode: lobby.NonPersistent}
			if _, err := s.AssignFree(f.ctx, a); err != nil {
				b.Error(err)
				return
			}
			if err := s.DeleteAssignment(f.ctx, a.ID); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "assignments/s")
}

// User creates a user with a unique random name.
func User(tb testing.TB, s store.Store) *lobby.User {
	tb.Helper()
	u := &lobby.User{Username: lobby.NewID("user"), Role: lobby.RoleUser}
	must(tb, s.CreateUser(tb.Context(), u, "hash"))
	return u
}
