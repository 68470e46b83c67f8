// Package storetest is the one test suite of store.Store: every
// implementation (SQLite, PostgreSQL) runs Exercise, so they behave alike
// (like River's riverdrivertest).
package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"lobby/internal/lobby"
	"lobby/internal/store"
)

// Exercise runs the suite. open returns a new, empty, migrated store for
// one test, closed in t.Cleanup; tests run in parallel, each with its own
// store.
func Exercise(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, f *fixture)
	}{
		{"Basics", testBasics},
		{"Users", testUsers},
		{"UserPaging", testUserPaging},
		{"DeleteUserCascades", testDeleteUserCascades},
		{"Tokens", testTokens},
		{"Tickets", testTickets},
		{"DeleteExpired", testDeleteExpired},
		{"Hosts", testHosts},
		{"Nodes", testNodes},
		{"Leases", testLeases},
		{"NodeHealth", testNodeHealth},
		{"HostLinks", testHostLinks},
		{"DeleteHost", testDeleteHost},
		{"HostDown", testHostDown},
		{"JoinTokens", testJoinTokens},
		{"JoinTokenPaging", testJoinTokenPaging},
		{"ConcurrentUseJoinToken", testConcurrentUseJoinToken},
		{"Desktops", testDesktops},
		{"DesktopFilters", testDesktopFilters},
		{"Pools", testPools},
		{"PoolCounts", testPoolCounts},
		{"Policies", testPolicies},
		{"AssignFree", testAssignFree},
		{"AssignDesktop", testAssignDesktop},
		{"Assignments", testAssignments},
		{"ExistingAssignments", testExistingAssignments},
		{"DeleteDesktopCascades", testDeleteDesktopCascades},
		{"Audit", testAudit},
		{"Settings", testSettings},
		{"TimesRoundTrip", testTimesRoundTrip},
		{"InTxRollback", testInTxRollback},
		{"InTxCommit", testInTxCommit},
		{"InTxConcurrent", testInTxConcurrent},
		{"ConcurrentAssignFree", testConcurrentAssignFree},
		{"AssignFreeChurn", testAssignFreeChurn},
		{"ReleaseWhilePowerChanges", testReleaseWhilePowerChanges},
		{"LockUserLimit", testLockUserLimit},
		{"InTxAssignContended", testInTxAssignContended},
		{"DeleteDesktopWhileReleased", testDeleteDesktopWhileReleased},
		{"DeleteUserWhileReleased", testDeleteUserWhileReleased},
		{"DeletePoolWhileAssigning", testDeletePoolWhileAssigning},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, &fixture{s: open(t), ctx: t.Context()})
		})
	}
}

// fixture is a store with helpers that create rows; nil options mean
// defaults.
type fixture struct {
	s   store.Store
	ctx context.Context
	n   int
}

func (f *fixture) next() int { f.n++; return f.n }

// UserOpts customizes fixture.user.
type userOpts struct {
	Name *string
	Role *lobby.Role
}

func (f *fixture) user(t testing.TB, o *userOpts) *lobby.User {
	t.Helper()
	u := &lobby.User{Username: fmt.Sprintf("user%d", f.next()), Role: lobby.RoleUser, Groups: []string{"staff"}}
	if o != nil && o.Name != nil {
		u.Username = *o.Name
	}
	if o != nil && o.Role != nil {
		u.Role = *o.Role
	}
	must(t, f.s.CreateUser(f.ctx, u, "hash-"+u.Username))
	return u
}

func (f *fixture) host(t testing.TB) *lobby.Host {
	t.Helper()
	h := &lobby.Host{Name: fmt.Sprintf("host%d", f.next()), Provider: "local", State: lobby.HostUp, SiteID: 1}
	must(t, f.s.UpsertHost(f.ctx, h))
	return h
}

func (f *fixture) pool(t testing.TB) *lobby.Pool {
	t.Helper()
	p := &lobby.Pool{Name: fmt.Sprintf("pool%d", f.next()), MinSize: 1, MaxSize: 10, NamePattern: "d-{n}", Template: "default"}
	must(t, f.s.CreatePool(f.ctx, p))
	return p
}

// desktop creates a desktop on host in pool (nil: none) with the power
// state.
func (f *fixture) desktop(t testing.TB, host *lobby.Host, pool *lobby.Pool, power lobby.PowerState) *lobby.Desktop {
	t.Helper()
	d := &lobby.Desktop{Name: fmt.Sprintf("desk%d", f.next()), HostID: host.ID, Power: power, ConsoleKind: "vnc", ConsolePort: 5900, Tags: []string{"a"}}
	if pool != nil {
		d.PoolID = pool.ID
	}
	must(t, f.s.CreateDesktop(f.ctx, d))
	return d
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// wantErr fails unless err wraps target.
func wantErr(t testing.TB, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("got error %v, want %v", err, target)
	}
}

// same fails unless got and want are deeply equal.
func same(t testing.TB, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got  %+v\n want %+v", what, got, want)
	}
}

// at returns a fixed time with nanoseconds, which the store truncates to
// microseconds.
func at(offset time.Duration) time.Time {
	return time.Date(2026, 3, 4, 5, 6, 7, 123456789, time.UTC).Add(offset)
}

func ptr[T any](v T) *T { return &v }

func testBasics(t *testing.T, f *fixture) {
	if d := f.s.Dialect(); d != store.SQLite && d != store.Postgres {
		t.Fatalf("Dialect() = %q", d)
	}
	must(t, f.s.Ping(f.ctx))
	v, err := f.s.SchemaVersion(f.ctx)
	must(t, err)
	if v < 1 {
		t.Fatalf("SchemaVersion = %d, want >= 1", v)
	}
}

func testSettings(t *testing.T, f *fixture) {
	_, err := f.s.GetSetting(f.ctx, "cluster.ca")
	wantErr(t, err, store.ErrNotFound)
	must(t, f.s.SetSetting(f.ctx, "cluster.ca", "one"))
	must(t, f.s.SetSetting(f.ctx, "cluster.ca", "two"))
	must(t, f.s.SetSetting(f.ctx, "other", ""))
	v, err := f.s.GetSetting(f.ctx, "cluster.ca")
	must(t, err)
	same(t, "setting", v, "two")
	v, err = f.s.GetSetting(f.ctx, "other")
	must(t, err)
	same(t, "empty setting", v, "")
}
