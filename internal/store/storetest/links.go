package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"lobby/internal/lobby"
	"lobby/internal/store"
)

// joinToken creates a join token of max uses expiring at expires.
func (f *fixture) joinToken(t testing.TB, maxUses int, expires time.Time) *store.JoinToken {
	t.Helper()
	n := f.next()
	jt := &store.JoinToken{Hash: fmt.Sprintf("hash%d", n), CreatedBy: "admin", Expires: expires, MaxUses: maxUses}
	must(t, f.s.CreateJoinToken(f.ctx, jt))
	return jt
}

// uses returns how many times the join token was used.
func (f *fixture) uses(t testing.TB, id string) int {
	t.Helper()
	jt, err := f.s.GetJoinToken(f.ctx, id)
	must(t, err)
	return jt.Uses
}

func testJoinTokens(t *testing.T, f *fixture) {
	jt := &store.JoinToken{Hash: "h1", Note: "rack 4", CreatedBy: "admin", Created: at(-time.Hour), Expires: at(time.Hour), MaxUses: 2}
	must(t, f.s.CreateJoinToken(f.ctx, jt))
	if jt.ID[:4] != "jtk_" {
		t.Fatalf("ID = %q, want jtk_...", jt.ID)
	}
	want := store.JoinToken{ID: jt.ID, Hash: "h1", Note: "rack 4", CreatedBy: "admin",
		Created: at(-time.Hour).Truncate(time.Microsecond), Expires: at(time.Hour).Truncate(time.Microsecond), MaxUses: 2}
	same(t, "created join token", *jt, want)
	got, err := f.s.GetJoinToken(f.ctx, jt.ID)
	must(t, err)
	same(t, "GetJoinToken", *got, want)

	// Created defaults to now; the hash and the ID are unique; an expiry
	// is required.
	other := f.joinToken(t, 1, at(time.Hour))
	if other.Created.IsZero() {
		t.Fatal("Created not set")
	}
	wantErr(t, f.s.CreateJoinToken(f.ctx, &store.JoinToken{Hash: "h1", CreatedBy: "admin", Expires: at(time.Hour), MaxUses: 1}), store.ErrConflict)
	wantErr(t, f.s.CreateJoinToken(f.ctx, &store.JoinToken{ID: jt.ID, Hash: "h2", CreatedBy: "admin", Expires: at(time.Hour), MaxUses: 1}), store.ErrConflict)
	if err := f.s.CreateJoinToken(f.ctx, &store.JoinToken{Hash: "h3", CreatedBy: "admin", MaxUses: 1}); lobby.ErrorKind(err) != lobby.KindInvalid {
		t.Fatalf("CreateJoinToken without Expires: %v, want an invalid error", err)
	}
	_, err = f.s.GetJoinToken(f.ctx, "jtk_nope")
	wantErr(t, err, store.ErrNotFound)

	// Each use counts until none is left.
	must(t, f.s.UseJoinToken(f.ctx, jt.ID, at(0)))
	same(t, "uses after one", f.uses(t, jt.ID), 1)
	must(t, f.s.UseJoinToken(f.ctx, jt.ID, at(0)))
	same(t, "uses after two", f.uses(t, jt.ID), 2)
	wantErr(t, f.s.UseJoinToken(f.ctx, jt.ID, at(0)), store.ErrConflict)
	same(t, "uses after a refused use", f.uses(t, jt.ID), 2)
	wantErr(t, f.s.UseJoinToken(f.ctx, "jtk_nope", at(0)), store.ErrNotFound)

	// Expired at or after Expires.
	exp := f.joinToken(t, 5, at(0))
	must(t, f.s.UseJoinToken(f.ctx, exp.ID, at(-time.Microsecond)))
	wantErr(t, f.s.UseJoinToken(f.ctx, exp.ID, at(0)), store.ErrConflict)
	wantErr(t, f.s.UseJoinToken(f.ctx, exp.ID, at(time.Hour)), store.ErrConflict)
	same(t, "uses of an expired token", f.uses(t, exp.ID), 1)

	// Revoked.
	rev := f.joinToken(t, 5, at(time.Hour))
	must(t, f.s.UseJoinToken(f.ctx, rev.ID, at(0)))
	must(t, f.s.RevokeJoinToken(f.ctx, rev.ID))
	got, err = f.s.GetJoinToken(f.ctx, rev.ID)
	must(t, err)
	same(t, "revoked", got.Revoked, true)
	wantErr(t, f.s.UseJoinToken(f.ctx, rev.ID, at(0)), store.ErrConflict)
	same(t, "uses of a revoked token", f.uses(t, rev.ID), 1)
	wantErr(t, f.s.RevokeJoinToken(f.ctx, "jtk_nope"), store.ErrNotFound)
	got, err = f.s.GetJoinToken(f.ctx, other.ID)
	must(t, err)
	same(t, "other token revoked", got.Revoked, false)

	// A use in a transaction that rolls back is not counted.
	errRollback := errors.New("rollback")
	err = f.s.InTx(f.ctx, func(q store.Queries) error {
		if err := q.UseJoinToken(f.ctx, other.ID, at(0)); err != nil {
			return err
		}
		return errRollback
	})
	wantErr(t, err, errRollback)
	same(t, "uses after a rollback", f.uses(t, other.ID), 0)
}

func testJoinTokenPaging(t *testing.T, f *fixture) {
	var ids []string
	for range 5 {
		ids = append(ids, f.joinToken(t, 1, at(time.Hour)).ID)
	}
	all, err := f.s.ListJoinTokens(f.ctx, store.ListOptions{})
	must(t, err)
	same(t, "listed", len(all), 5)
	for i := 1; i < len(all); i++ {
		if all[i-1].ID >= all[i].ID {
			t.Fatalf("not in ID order: %q before %q", all[i-1].ID, all[i].ID)
		}
	}
	byID := map[string]bool{}
	for _, jt := range all {
		byID[jt.ID] = true
	}
	for _, id := range ids {
		if !byID[id] {
			t.Fatalf("join token %q not listed", id)
		}
	}
	got, err := f.s.GetJoinToken(f.ctx, all[0].ID)
	must(t, err)
	same(t, "listed join token", all[0], *got)

	var paged []string
	after := ""
	for {
		page, err := f.s.ListJoinTokens(f.ctx, store.ListOptions{After: after, Limit: 2})
		must(t, err)
		if len(page) > 2 {
			t.Fatalf("page of %d, want at most 2", len(page))
		}
		if len(page) == 0 {
			break
		}
		for _, jt := range page {
			paged = append(paged, jt.ID)
		}
		after = page[len(page)-1].ID
	}
	want := make([]string, len(all))
	for i, jt := range all {
		want[i] = jt.ID
	}
	same(t, "paged IDs", paged, want)
}

// testConcurrentUseJoinToken: of concurrent uses of a 1-use token, exactly
// one succeeds and the others are refused.
func testConcurrentUseJoinToken(t *testing.T, f *fixture) {
	const rounds, callers = 5, 8
	for range rounds {
		jt := f.joinToken(t, 1, at(time.Hour))
		var (
			wg       sync.WaitGroup
			mu       sync.Mutex
			ok       int
			failures []error
		)
		start := make(chan struct{})
		for range callers {
			wg.Go(func() {
				<-start
				err := f.s.UseJoinToken(f.ctx, jt.ID, at(0))
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					ok++
				case !errors.Is(err, store.ErrConflict):
					failures = append(failures, err)
				}
			})
		}
		close(start)
		wg.Wait()
		if len(failures) > 0 {
			t.Fatalf("failures: %v", failures)
		}
		same(t, "successful uses", ok, 1)
		same(t, "uses", f.uses(t, jt.ID), 1)
	}
}

func testHostLinks(t *testing.T, f *fixture) {
	h := &lobby.Host{Name: "agent1", Provider: "libvirt", State: lobby.HostDown, SiteID: 2, CertSerial: "0a1b", Created: at(-time.Hour)}
	must(t, f.s.CreateHost(f.ctx, h))
	if h.ID[:4] != "hst_" {
		t.Fatalf("ID = %q, want hst_...", h.ID)
	}
	want := lobby.Host{ID: h.ID, Name: "agent1", Provider: "libvirt", State: lobby.HostDown, SiteID: 2, CertSerial: "0a1b",
		Created: at(-time.Hour).Truncate(time.Microsecond)}
	same(t, "created host", *h, want)
	check := func(what string) {
		t.Helper()
		got, err := f.s.GetHost(f.ctx, h.ID)
		must(t, err)
		same(t, what+": GetHost", *got, want)
		got, err = f.s.GetHostByName(f.ctx, h.Name)
		must(t, err)
		same(t, what+": GetHostByName", *got, want)
		hosts, err := f.s.ListHosts(f.ctx, store.ListOptions{})
		must(t, err)
		for _, l := range hosts {
			if l.ID == h.ID {
				same(t, what+": ListHosts", l, want)
				return
			}
		}
		t.Fatalf("%s: host %q not listed", what, h.ID)
	}
	check("created")

	// Created defaults to now; names are unique, with upserted hosts too.
	up := f.host(t)
	h2 := &lobby.Host{Name: "agent2", Provider: "libvirt", State: lobby.HostDown}
	must(t, f.s.CreateHost(f.ctx, h2))
	if h2.Created.IsZero() {
		t.Fatal("Created not set")
	}
	wantErr(t, f.s.CreateHost(f.ctx, &lobby.Host{Name: "agent1", Provider: "libvirt", State: lobby.HostDown}), store.ErrConflict)
	wantErr(t, f.s.CreateHost(f.ctx, &lobby.Host{Name: up.Name, Provider: "libvirt", State: lobby.HostDown}), store.ErrConflict)

	// A report sets every reported field.
	r := store.HostReport{State: lobby.HostUp, SiteID: 3, Seen: at(time.Minute), Address: "192.0.2.7:51234", AgentVersion: "1.2.3",
		CPUPercent: 37.5, MemTotal: 16 << 30, MemUsed: 5 << 30, Running: 4}
	must(t, f.s.SetHostReport(f.ctx, h.ID, r))
	want.State, want.SiteID, want.LastSeen, want.Address, want.AgentVersion = lobby.HostUp, 3, at(time.Minute).Truncate(time.Microsecond), r.Address, r.AgentVersion
	want.CPUPercent, want.MemTotal, want.MemUsed, want.Running = 37.5, 16<<30, 5<<30, 4
	check("reported")

	// Revoking marks the host down, and a later report does not bring it
	// up (its other fields are recorded).
	must(t, f.s.RevokeHost(f.ctx, h.ID))
	want.Revoked, want.State = true, lobby.HostDown
	check("revoked")
	r.Seen, r.CPUPercent, r.Running = at(2*time.Minute), 12.25, 3
	wantErr(t, f.s.SetHostReport(f.ctx, h.ID, r), store.ErrRevoked)
	want.LastSeen, want.CPUPercent, want.Running = at(2*time.Minute).Truncate(time.Microsecond), 12.25, 3
	check("reported while revoked")

	// UpsertHost (the in-process agent) keeps the link fields.
	must(t, f.s.UpsertHost(f.ctx, &lobby.Host{Name: "agent1", Provider: "local", State: lobby.HostUp, SiteID: 5, LastSeen: at(time.Hour)}))
	want.Provider, want.State, want.SiteID, want.LastSeen = "local", lobby.HostUp, 5, at(time.Hour).Truncate(time.Microsecond)
	check("upserted")

	// A new certificate clears the revocation.
	must(t, f.s.SetHostCert(f.ctx, h.ID, "ffee"))
	want.CertSerial, want.Revoked = "ffee", false
	check("new certificate")
	must(t, f.s.SetHostReport(f.ctx, h.ID, r))
	want.State, want.SiteID, want.LastSeen = lobby.HostUp, 3, at(2*time.Minute).Truncate(time.Microsecond)
	check("reported after the new certificate")

	// A renewal waits until the agent links with it; a wrong serial is
	// not promoted; revoking drops it.
	must(t, f.s.SetHostPendingCert(f.ctx, h.ID, "ff01"))
	check("renewal pending") // the certificate stays until the new one is used
	wantErr(t, f.s.PromoteHostCert(f.ctx, h.ID, "ff02"), store.ErrNotFound)
	must(t, f.s.PromoteHostCert(f.ctx, h.ID, "ff01"))
	want.CertSerial = "ff01"
	check("renewal used")
	wantErr(t, f.s.PromoteHostCert(f.ctx, h.ID, "ff01"), store.ErrNotFound)
	must(t, f.s.SetHostPendingCert(f.ctx, h.ID, "ff03"))
	must(t, f.s.RevokeHost(f.ctx, h.ID))
	want.Revoked, want.State = true, lobby.HostDown
	check("revoked while a renewal was pending")
	wantErr(t, f.s.SetHostPendingCert(f.ctx, h.ID, "ff04"), store.ErrRevoked)
	wantErr(t, f.s.PromoteHostCert(f.ctx, h.ID, "ff03"), store.ErrNotFound)
	must(t, f.s.SetHostCert(f.ctx, h.ID, "ffee"))
	want.CertSerial, want.Revoked = "ffee", false
	check("joined again")
	wantErr(t, f.s.SetHostPendingCert(f.ctx, "hst_nope", "01"), store.ErrNotFound)

	// The other hosts are untouched.
	got, err := f.s.GetHost(f.ctx, h2.ID)
	must(t, err)
	same(t, "other host", *got, *h2)

	wantErr(t, f.s.SetHostCert(f.ctx, "hst_nope", "01"), store.ErrNotFound)
	wantErr(t, f.s.RevokeHost(f.ctx, "hst_nope"), store.ErrNotFound)
	wantErr(t, f.s.SetHostReport(f.ctx, "hst_nope", r), store.ErrNotFound)
}

// testHostDown: the node that loses a host's link marks it down only while
// the host is still recorded on that node, never over the node it moved to.
func testHostDown(t *testing.T, f *fixture) {
	h := &lobby.Host{Name: "mover", Provider: "local", State: lobby.HostDown, SiteID: 1, CertSerial: "01", Created: at(0)}
	must(t, f.s.CreateHost(f.ctx, h))
	must(t, f.s.SetHostReport(f.ctx, h.ID, store.HostReport{State: lobby.HostUp, SiteID: 1, Seen: at(time.Minute)}))
	state := func(what string, want lobby.HostState, site int, seen time.Time) {
		t.Helper()
		got, err := f.s.GetHost(f.ctx, h.ID)
		must(t, err)
		if got.State != want || got.SiteID != site || !got.LastSeen.Equal(seen.Truncate(time.Microsecond)) {
			t.Errorf("%s: host %s on site %d seen %s, want %s on site %d seen %s", what, got.State, got.SiteID, got.LastSeen, want, site, seen)
		}
	}
	// The host moves to node 2 before node 1 notices its link ended.
	must(t, f.s.SetHostReport(f.ctx, h.ID, store.HostReport{State: lobby.HostUp, SiteID: 2, Seen: at(2 * time.Minute)}))
	wrote, err := f.s.SetHostDown(f.ctx, h.ID, 1, at(3*time.Minute))
	must(t, err)
	if wrote {
		t.Error("node 1 marked down a host that moved to node 2")
	}
	state("after node 1's late down", lobby.HostUp, 2, at(2*time.Minute))
	// Node 2 loses it: down, still recorded on node 2.
	wrote, err = f.s.SetHostDown(f.ctx, h.ID, 2, at(4*time.Minute))
	must(t, err)
	if !wrote {
		t.Error("node 2 could not mark down its own host")
	}
	state("after node 2's down", lobby.HostDown, 2, at(4*time.Minute))
	_, err = f.s.SetHostDown(f.ctx, "hst_nope", 2, at(0))
	wantErr(t, err, store.ErrNotFound)
}

func testDeleteHost(t *testing.T, f *fixture) {
	h, other := f.host(t), f.host(t)
	d := f.desktop(t, h, nil, lobby.PowerRunning)
	f.desktop(t, other, nil, lobby.PowerRunning)
	wantErr(t, f.s.DeleteHost(f.ctx, h.ID), store.ErrConflict)
	_, err := f.s.GetHost(f.ctx, h.ID)
	must(t, err)
	must(t, f.s.DeleteDesktop(f.ctx, d.ID))
	must(t, f.s.DeleteHost(f.ctx, h.ID))
	_, err = f.s.GetHost(f.ctx, h.ID)
	wantErr(t, err, store.ErrNotFound)
	wantErr(t, f.s.DeleteHost(f.ctx, h.ID), store.ErrNotFound)
	_, err = f.s.GetHost(f.ctx, other.ID)
	must(t, err)
}
