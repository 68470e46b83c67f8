package manage_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"lobby/internal/lobby"
	"lobby/internal/manage"
	"lobby/internal/store"
	"lobby/internal/store/pgtest"
	"lobby/internal/store/postgres"
)

// onEachStore runs fn as a subtest on SQLite and on PostgreSQL.
func onEachStore(t *testing.T, fn func(t *testing.T, f *fixture)) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		fn(t, setup(t))
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		st, err := postgres.Open(ctx, pgtest.URL(t), slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		hub := &fakeHub{}
		fn(t, &fixture{ctx: ctx, st: st, hub: hub, m: &manage.Service{Store: st, Now: func() time.Time { return t0 }, CAFingerprint: fp, Hub: hub}})
	})
}

// TestDeletePoolNotEmpty: a pool with desktops is refused with a conflict
// that says how to empty it from the CLI and the API (its minimums to 0
// first while they are above, so that the pool manager does not provision
// the deleted desktops again), and is left as it was. On PostgreSQL the
// refused statement ends the transaction, so the count comes after it.
func TestDeletePoolNotEmpty(t *testing.T) {
	t.Parallel()
	onEachStore(t, func(t *testing.T, f *fixture) {
		p, err := f.m.CreatePool(f.ctx, adminActor, manage.PoolInput{Name: "demo", MinSize: 3, MaxSize: 3, MinFree: 3})
		if err != nil {
			t.Fatal(err)
		}
		h := f.addHost(t, "alpha", "0abc")
		var ids []string
		for i := 1; i <= 3; i++ {
			d := &lobby.Desktop{Name: fmt.Sprintf("demo-%d", i), HostID: h.ID, PoolID: p.ID, Power: lobby.PowerRunning, ConsoleKind: "vnc", Tags: []string{}}
			if err := f.st.CreateDesktop(f.ctx, d); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, d.ID)
		}
		wantKind(t, f.m.DeletePool(f.ctx, operatorActor, "demo"), lobby.KindForbidden, "")

		err = f.m.DeletePool(f.ctx, adminActor, "demo")
		wantKind(t, err, lobby.KindConflict, "")
		if want := "pool demo still has 3 desktops: set its minimum size and free desktops to 0" +
			" (lobby pools set demo --min 0 --min-free 0, or PUT /api/v1/pools/demo with min_size and min_free 0)" +
			" and delete its desktops (lobby desktops rm NAME, or POST /api/v1/desktops/ID/actions with action delete), then remove the pool"; err.Error() != want {
			t.Fatalf("refusal:\n%s\nwant:\n%s", err, want)
		}
		if got, err := f.m.Pool(f.ctx, "demo"); err != nil || got.MinSize != 3 {
			t.Fatalf("the refused pool is now %+v, %v", got, err)
		}
		if evs, _ := f.st.ListAudit(f.ctx, store.AuditFilter{Query: "pool.delete"}); len(evs) != 0 {
			t.Fatalf("a refused deletion is audited: %+v", evs)
		}

		// Minimums at 0 and one desktop left: only its deletion remains
		// to be done (the pool named by ID this time).
		if _, err := f.m.UpdatePool(f.ctx, adminActor, "demo", func(in *manage.PoolInput) error {
			in.MinSize, in.MinFree = 0, 0
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		for _, id := range ids[1:] {
			if err := f.st.DeleteDesktop(f.ctx, id); err != nil {
				t.Fatal(err)
			}
		}
		err = f.m.DeletePool(f.ctx, adminActor, p.ID)
		wantKind(t, err, lobby.KindConflict, "")
		if want := "pool demo still has 1 desktop: delete its desktops (lobby desktops rm NAME, or POST /api/v1/desktops/ID/actions with action delete), then remove the pool"; err.Error() != want {
			t.Fatalf("refusal:\n%s\nwant:\n%s", err, want)
		}

		if err := f.st.DeleteDesktop(f.ctx, ids[0]); err != nil {
			t.Fatal(err)
		}
		if err := f.m.DeletePool(f.ctx, adminActor, "demo"); err != nil {
			t.Fatalf("delete the emptied pool: %v", err)
		}
		wantKind(t, f.m.DeletePool(f.ctx, adminActor, "demo"), lobby.KindNotFound, "")
		if evs, _ := f.st.ListAudit(f.ctx, store.AuditFilter{Query: "pool.delete"}); len(evs) != 1 || evs[0].Target != p.ID {
			t.Fatalf("audit %+v", evs)
		}
	})
}

// TestDeletePoolLeavesNoPolicyOfferingIt: the policies that offered a
// deleted pool stop naming it, in the same transaction, with an audit
// entry each; the others are left alone.
func TestDeletePoolLeavesNoPolicyOfferingIt(t *testing.T) {
	t.Parallel()
	onEachStore(t, func(t *testing.T, f *fixture) {
		for _, name := range []string{"gone", "kept"} {
			if _, err := f.m.CreatePool(f.ctx, adminActor, manage.PoolInput{Name: name, MaxSize: 1}); err != nil {
				t.Fatal(err)
			}
		}
		both, err := f.m.CreatePolicy(f.ctx, adminActor, manage.PolicyInput{Name: "both", Pools: []string{"gone", "kept"}, Users: []string{"*"}, MaxDesktops: 1, Mode: lobby.NonPersistent, PowerPlan: lobby.PowerKeep})
		if err != nil {
			t.Fatal(err)
		}
		other, err := f.m.CreatePolicy(f.ctx, adminActor, manage.PolicyInput{Name: "other", Pools: []string{"kept"}, Users: []string{"*"}, MaxDesktops: 1, Mode: lobby.NonPersistent, PowerPlan: lobby.PowerKeep})
		if err != nil {
			t.Fatal(err)
		}
		kept, err := f.m.Pool(f.ctx, "kept")
		if err != nil {
			t.Fatal(err)
		}
		if err := f.m.DeletePool(f.ctx, adminActor, "gone"); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			id   string
			want []string
		}{{both.ID, []string{kept.ID}}, {other.ID, []string{kept.ID}}} {
			got, err := f.st.GetPolicy(f.ctx, c.id)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got.Pools, c.want) {
				t.Errorf("policy %s offers %v, want %v", got.Name, got.Pools, c.want)
			}
		}
		evs, _ := f.st.ListAudit(f.ctx, store.AuditFilter{Query: "policy.update"})
		if len(evs) != 1 || evs[0].Target != both.ID {
			t.Fatalf("audit of the policies changed: %+v, want one for %s", evs, both.ID)
		}
	})
}
