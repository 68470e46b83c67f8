package storetest

import (
	"testing"
	"time"

	"lobby/internal/lobby"
	"lobby/internal/store"
)

func testHosts(t *testing.T, f *fixture) {
	h := &lobby.Host{Name: "h1", Provider: "local", State: lobby.HostUp, SiteID: 3, LastSeen: at(0), Created: at(-time.Hour)}
	must(t, f.s.UpsertHost(f.ctx, h))
	if h.ID[:4] != "hst_" {
		t.Fatalf("ID = %q, want hst_...", h.ID)
	}
	want := lobby.Host{ID: h.ID, Name: "h1", Provider: "local", State: lobby.HostUp, SiteID: 3,
		LastSeen: at(0).Truncate(time.Microsecond), Created: at(-time.Hour).Truncate(time.Microsecond)}
	same(t, "upserted host", *h, want)

	// A second upsert by name updates the row and keeps its ID and Created.
	again := &lobby.Host{Name: "h1", Provider: "vsphere", State: lobby.HostDown, SiteID: 4, LastSeen: at(time.Minute)}
	must(t, f.s.UpsertHost(f.ctx, again))
	want.Provider, want.State, want.SiteID, want.LastSeen = "vsphere", lobby.HostDown, 4, at(time.Minute).Truncate(time.Microsecond)
	same(t, "re-upserted host", *again, want)
	got, err := f.s.GetHost(f.ctx, h.ID)
	must(t, err)
	same(t, "GetHost", *got, want)
	got, err = f.s.GetHostByName(f.ctx, "h1")
	must(t, err)
	same(t, "GetHostByName", *got, want)

	must(t, f.s.SetHostState(f.ctx, h.ID, lobby.HostUp, 7, at(time.Hour)))
	got, err = f.s.GetHost(f.ctx, h.ID)
	must(t, err)
	want.State, want.SiteID, want.LastSeen = lobby.HostUp, 7, at(time.Hour).Truncate(time.Microsecond)
	same(t, "after SetHostState", *got, want)

	// Zero LastSeen round-trips as zero.
	h2 := &lobby.Host{Name: "h2", Provider: "local", State: lobby.HostDown}
	must(t, f.s.UpsertHost(f.ctx, h2))
	got, err = f.s.GetHost(f.ctx, h2.ID)
	must(t, err)
	if !got.LastSeen.IsZero() {
		t.Fatalf("LastSeen = %v, want zero", got.LastSeen)
	}

	_, err = f.s.GetHost(f.ctx, "hst_nope")
	wantErr(t, err, store.ErrNotFound)
	_, err = f.s.GetHostByName(f.ctx, "nope")
	wantErr(t, err, store.ErrNotFound)
	wantErr(t, f.s.SetHostState(f.ctx, "hst_nope", lobby.HostUp, 1, at(0)), store.ErrNotFound)
	// Another name with a taken ID.
	wantErr(t, f.s.UpsertHost(f.ctx, &lobby.Host{ID: h.ID, Name: "h3", Provider: "local", State: lobby.HostUp}), store.ErrConflict)

	hosts, err := f.s.ListHosts(f.ctx, store.ListOptions{})
	must(t, err)
	same(t, "hosts", len(hosts), 2)
	hosts, err = f.s.ListHosts(f.ctx, store.ListOptions{After: hosts[0].ID, Limit: 5})
	must(t, err)
	same(t, "hosts after the first", len(hosts), 1)
}

func testDesktops(t *testing.T, f *fixture) {
	h, p := f.host(t), f.pool(t)
	d := &lobby.Desktop{Name: "d1", HostID: h.ID, PoolID: p.ID, Power: lobby.PowerCreating, ConsoleKind: "vnc", Created: at(0)}
	must(t, f.s.CreateDesktop(f.ctx, d))
	if d.ID[:4] != "dsk_" {
		t.Fatalf("ID = %q, want dsk_...", d.ID)
	}
	want := lobby.Desktop{ID: d.ID, Name: "d1", HostID: h.ID, PoolID: p.ID, Power: lobby.PowerCreating, ConsoleKind: "vnc",
		Tags: []string{}, Created: at(0).Truncate(time.Microsecond), Updated: at(0).Truncate(time.Microsecond)}
	same(t, "created desktop", *d, want)
	got, err := f.s.GetDesktop(f.ctx, d.ID)
	must(t, err)
	same(t, "GetDesktop", *got, want)
	got, err = f.s.GetDesktopByName(f.ctx, h.ID, "d1")
	must(t, err)
	same(t, "GetDesktopByName", *got, want)

	// Names are unique per host only.
	wantErr(t, f.s.CreateDesktop(f.ctx, &lobby.Desktop{Name: "d1", HostID: h.ID, Power: lobby.PowerStopped, ConsoleKind: "vnc"}), store.ErrConflict)
	h2 := f.host(t)
	must(t, f.s.CreateDesktop(f.ctx, &lobby.Desktop{Name: "d1", HostID: h2.ID, Power: lobby.PowerStopped, ConsoleKind: "vnc"}))
	wantErr(t, f.s.CreateDesktop(f.ctx, &lobby.Desktop{Name: "x", HostID: "hst_nope", Power: lobby.PowerStopped}), store.ErrNotFound)
	wantErr(t, f.s.CreateDesktop(f.ctx, &lobby.Desktop{Name: "x", HostID: h.ID, PoolID: "pool_nope", Power: lobby.PowerStopped}), store.ErrNotFound)
	if err := f.s.CreateDesktop(f.ctx, &lobby.Desktop{Name: "x", HostID: h.ID, AssignedTo: "usr_x"}); lobby.ErrorKind(err) != lobby.KindInvalid {
		t.Fatalf("CreateDesktop with AssignedTo: %v, want an invalid error", err)
	}
	_, err = f.s.GetDesktop(f.ctx, "dsk_nope")
	wantErr(t, err, store.ErrNotFound)
	_, err = f.s.GetDesktopByName(f.ctx, h2.ID, "nope")
	wantErr(t, err, store.ErrNotFound)

	// Update every mutable field; AssignedTo is not one of them.
	d.Name, d.HostID, d.PoolID, d.Power, d.ConsolePort, d.Tags, d.AssignedTo = "d2", h2.ID, "", lobby.PowerRunning, 5901, []string{"x", "y"}, "usr_x"
	must(t, f.s.UpdateDesktop(f.ctx, d))
	if !d.Updated.After(want.Updated) {
		t.Fatalf("Updated = %v, want later than %v", d.Updated, want.Updated)
	}
	got, err = f.s.GetDesktop(f.ctx, d.ID)
	must(t, err)
	want.Name, want.HostID, want.PoolID, want.Power, want.ConsolePort, want.Tags, want.Updated = "d2", h2.ID, "", lobby.PowerRunning, 5901, []string{"x", "y"}, d.Updated
	same(t, "updated desktop", *got, want)
	wantErr(t, f.s.UpdateDesktop(f.ctx, &lobby.Desktop{ID: "dsk_nope", Name: "n", HostID: h.ID}), store.ErrNotFound)
	d.Name = "d1" // taken on h2
	wantErr(t, f.s.UpdateDesktop(f.ctx, d), store.ErrConflict)
	d.Name, d.PoolID = "d2", "pool_nope"
	wantErr(t, f.s.UpdateDesktop(f.ctx, d), store.ErrNotFound)

	must(t, f.s.SetDesktopPower(f.ctx, d.ID, lobby.PowerStopped, 0))
	got, err = f.s.GetDesktop(f.ctx, d.ID)
	must(t, err)
	same(t, "power", got.Power, lobby.PowerStopped)
	same(t, "port", got.ConsolePort, 0)
	if got.Updated.Before(want.Updated) {
		t.Fatalf("SetDesktopPower did not set Updated")
	}
	wantErr(t, f.s.SetDesktopPower(f.ctx, "dsk_nope", lobby.PowerStopped, 0), store.ErrNotFound)

	must(t, f.s.DeleteDesktop(f.ctx, d.ID))
	_, err = f.s.GetDesktop(f.ctx, d.ID)
	wantErr(t, err, store.ErrNotFound)
	wantErr(t, f.s.DeleteDesktop(f.ctx, d.ID), store.ErrNotFound)
}

func testDesktopFilters(t *testing.T, f *fixture) {
	h1, h2 := f.host(t), f.host(t)
	p1, p2 := f.pool(t), f.pool(t)
	u := f.user(t, nil)
	var inP1 []string
	for i := range 6 {
		d := f.desktop(t, h1, p1, []lobby.PowerState{lobby.PowerRunning, lobby.PowerStopped}[i%2])
		inP1 = append(inP1, d.ID)
	}
	f.desktop(t, h2, p2, lobby.PowerRunning)
	f.desktop(t, h2, nil, lobby.PowerRunning)
	d := f.desktop(t, h2, p1, lobby.PowerRunning)
	inP1 = append(inP1, d.ID)
	must(t, f.s.AssignDesktop(f.ctx, &lobby.Assignment{DesktopID: d.ID, UserID: u.ID, Mode: lobby.Persistent}))

	count := func(fl store.DesktopFilter) int {
		t.Helper()
		ds, err := f.s.ListDesktops(f.ctx, fl, store.ListOptions{})
		must(t, err)
		return len(ds)
	}
	for _, c := range []struct {
		name string
		f    store.DesktopFilter
		want int
	}{
		{"all", store.DesktopFilter{}, 9},
		{"pool", store.DesktopFilter{PoolID: p1.ID}, 7},
		{"host", store.DesktopFilter{HostID: h2.ID}, 3},
		{"pool and host", store.DesktopFilter{PoolID: p1.ID, HostID: h2.ID}, 1},
		{"power", store.DesktopFilter{Power: lobby.PowerRunning}, 6},
		{"pool and power", store.DesktopFilter{PoolID: p1.ID, Power: lobby.PowerStopped}, 3},
		{"assigned", store.DesktopFilter{AssignedTo: u.ID}, 1},
		{"unknown pool", store.DesktopFilter{PoolID: "pool_nope"}, 0},
	} {
		if got := count(c.f); got != c.want {
			t.Errorf("%s: %d desktops, want %d", c.name, got, c.want)
		}
	}

	// Paging within a filter.
	var paged []string
	after := ""
	for {
		page, err := f.s.ListDesktops(f.ctx, store.DesktopFilter{PoolID: p1.ID}, store.ListOptions{After: after, Limit: 2})
		must(t, err)
		if len(page) == 0 {
			break
		}
		for _, d := range page {
			paged = append(paged, d.ID)
		}
		after = page[len(page)-1].ID
	}
	same(t, "paged desktops of the pool", len(paged), len(inP1))
}

func testPools(t *testing.T, f *fixture) {
	p := &lobby.Pool{Name: "p1", MinSize: 1, MaxSize: 5, MinFree: 2, NamePattern: "p1-{n}", Template: "tpl", Created: at(0)}
	must(t, f.s.CreatePool(f.ctx, p))
	if p.ID[:5] != "pool_" {
		t.Fatalf("ID = %q, want pool_...", p.ID)
	}
	want := *p
	want.Created = at(0).Truncate(time.Microsecond)
	got, err := f.s.GetPool(f.ctx, p.ID)
	must(t, err)
	same(t, "GetPool", *got, want)
	got, err = f.s.GetPoolByName(f.ctx, "p1")
	must(t, err)
	same(t, "GetPoolByName", *got, want)

	wantErr(t, f.s.CreatePool(f.ctx, &lobby.Pool{Name: "p1", MaxSize: 1}), store.ErrConflict)
	_, err = f.s.GetPool(f.ctx, "pool_nope")
	wantErr(t, err, store.ErrNotFound)
	_, err = f.s.GetPoolByName(f.ctx, "nope")
	wantErr(t, err, store.ErrNotFound)

	p.Name, p.MinSize, p.MaxSize, p.MinFree, p.NamePattern, p.Template = "p1b", 0, 9, 1, "b-{n:3}", "tpl2"
	must(t, f.s.UpdatePool(f.ctx, p))
	got, err = f.s.GetPool(f.ctx, p.ID)
	must(t, err)
	want = *p
	same(t, "updated pool", *got, want)
	other := f.pool(t)
	other.Name = "p1b"
	wantErr(t, f.s.UpdatePool(f.ctx, other), store.ErrConflict)
	wantErr(t, f.s.UpdatePool(f.ctx, &lobby.Pool{ID: "pool_nope", Name: "zz"}), store.ErrNotFound)

	pools, err := f.s.ListPools(f.ctx, store.ListOptions{Limit: 1})
	must(t, err)
	same(t, "first page", len(pools), 1)
	pools, err = f.s.ListPools(f.ctx, store.ListOptions{After: pools[0].ID})
	must(t, err)
	same(t, "second page", len(pools), 1)

	// A pool with desktops cannot be deleted.
	d := f.desktop(t, f.host(t), p, lobby.PowerRunning)
	wantErr(t, f.s.DeletePool(f.ctx, p.ID), store.ErrConflict)
	must(t, f.s.DeleteDesktop(f.ctx, d.ID))
	must(t, f.s.DeletePool(f.ctx, p.ID))
	wantErr(t, f.s.DeletePool(f.ctx, p.ID), store.ErrNotFound)
}

func testPoolCounts(t *testing.T, f *fixture) {
	h, p := f.host(t), f.pool(t)
	u := f.user(t, nil)
	for _, power := range []lobby.PowerState{lobby.PowerRunning, lobby.PowerRunning, lobby.PowerRunning,
		lobby.PowerCreating, lobby.PowerStarting, lobby.PowerStopped, lobby.PowerSuspended, lobby.PowerError} {
		f.desktop(t, h, p, power)
	}
	f.desktop(t, h, f.pool(t), lobby.PowerRunning) // another pool
	_, err := f.s.AssignFree(f.ctx, &lobby.Assignment{UserID: u.ID, PoolID: p.ID, Mode: lobby.NonPersistent})
	must(t, err)
	c, err := f.s.PoolCounts(f.ctx, p.ID)
	must(t, err)
	same(t, "counts", c, store.PoolCounts{Total: 8, Free: 2, Assigned: 1, Pending: 2, Ready: 4, Idle: 2})

	empty := f.pool(t)
	c, err = f.s.PoolCounts(f.ctx, empty.ID)
	must(t, err)
	same(t, "counts of an empty pool", c, store.PoolCounts{})
	_, err = f.s.PoolCounts(f.ctx, "pool_nope")
	wantErr(t, err, store.ErrNotFound)
}

func testPolicies(t *testing.T, f *fixture) {
	p := &lobby.Policy{Name: "pol1", Pools: []string{"pool_a", "pool_b"}, Users: []string{"*"}, Groups: []string{"g"},
		MaxDesktops: 2, Mode: lobby.Persistent, PowerPlan: lobby.PowerSuspend, Priority: 5,
		Release: lobby.ReleasePlan{OnLogoff: true, DisconnectMinutes: 30, AtTime: "19:30"}, Created: at(0)}
	must(t, f.s.CreatePolicy(f.ctx, p))
	if p.ID[:4] != "pol_" {
		t.Fatalf("ID = %q, want pol_...", p.ID)
	}
	want := *p
	want.Created = at(0).Truncate(time.Microsecond)
	got, err := f.s.GetPolicy(f.ctx, p.ID)
	must(t, err)
	same(t, "GetPolicy", *got, want)
	got, err = f.s.GetPolicyByName(f.ctx, "pol1")
	must(t, err)
	same(t, "GetPolicyByName", *got, want)

	wantErr(t, f.s.CreatePolicy(f.ctx, &lobby.Policy{Name: "pol1"}), store.ErrConflict)
	_, err = f.s.GetPolicy(f.ctx, "pol_nope")
	wantErr(t, err, store.ErrNotFound)
	_, err = f.s.GetPolicyByName(f.ctx, "nope")
	wantErr(t, err, store.ErrNotFound)

	p.Name, p.Pools, p.Users, p.Groups, p.Release = "pol2", []string{"pool_c"}, nil, nil, lobby.ReleasePlan{}
	p.MaxDesktops, p.Mode, p.PowerPlan, p.Priority = 1, lobby.NonPersistent, lobby.PowerKeep, -1
	must(t, f.s.UpdatePolicy(f.ctx, p))
	got, err = f.s.GetPolicy(f.ctx, p.ID)
	must(t, err)
	want = *p
	want.Users, want.Groups = []string{}, []string{}
	same(t, "updated policy", *got, want)
	wantErr(t, f.s.UpdatePolicy(f.ctx, &lobby.Policy{ID: "pol_nope", Name: "x"}), store.ErrNotFound)

	must(t, f.s.CreatePolicy(f.ctx, &lobby.Policy{Name: "pol3"}))
	wantErr(t, f.s.UpdatePolicy(f.ctx, &lobby.Policy{ID: p.ID, Name: "pol3"}), store.ErrConflict)
	all, err := f.s.ListPolicies(f.ctx, store.ListOptions{})
	must(t, err)
	same(t, "policies", len(all), 2)

	must(t, f.s.DeletePolicy(f.ctx, p.ID))
	wantErr(t, f.s.DeletePolicy(f.ctx, p.ID), store.ErrNotFound)
	all, err = f.s.ListPolicies(f.ctx, store.ListOptions{})
	must(t, err)
	same(t, "policies after delete", len(all), 1)
}
