package storetest

import (
	"fmt"
	"testing"
	"time"

	"lobby/internal/lobby"
	"lobby/internal/store"
)

func testAudit(t *testing.T, f *fixture) {
	var ids []int64
	add := func(e lobby.AuditEvent) {
		t.Helper()
		must(t, f.s.AppendAudit(f.ctx, &e))
		if len(ids) > 0 && e.ID <= ids[len(ids)-1] {
			t.Fatalf("audit IDs not increasing: %d after %d", e.ID, ids[len(ids)-1])
		}
		ids = append(ids, e.ID)
	}
	add(lobby.AuditEvent{At: at(0), Actor: "alice", Action: "pool.create", Target: "pool_1", Detail: "name=Demo", Remote: "10.0.0.1"})
	add(lobby.AuditEvent{At: at(time.Minute), Actor: "bob", Action: "user.delete", Target: "usr_2", Detail: "50% off_sale"})
	add(lobby.AuditEvent{At: at(2 * time.Minute), Actor: "system", Action: "desktop.release", Target: "dsk_3"})
	for i := range 7 {
		add(lobby.AuditEvent{At: at(time.Hour), Actor: "carol", Action: "desktop.connect", Target: fmt.Sprintf("dsk_%d", i)})
	}

	list := func(fl store.AuditFilter) []lobby.AuditEvent {
		t.Helper()
		es, err := f.s.ListAudit(f.ctx, fl)
		must(t, err)
		for i := 1; i < len(es); i++ {
			if es[i].ID >= es[i-1].ID {
				t.Fatalf("audit not newest first")
			}
		}
		return es
	}
	all := list(store.AuditFilter{})
	same(t, "all", len(all), 10)
	same(t, "newest first", all[0].ID, ids[9])
	same(t, "oldest", all[9], lobby.AuditEvent{ID: ids[0], At: at(0).Truncate(time.Microsecond), Actor: "alice",
		Action: "pool.create", Target: "pool_1", Detail: "name=Demo", Remote: "10.0.0.1"})

	// Paging backwards with Before.
	var paged []int64
	before := int64(0)
	for {
		page := list(store.AuditFilter{Before: before, Limit: 4})
		if len(page) == 0 {
			break
		}
		for _, e := range page {
			paged = append(paged, e.ID)
		}
		before = page[len(page)-1].ID
	}
	same(t, "paged", len(paged), 10)

	for _, c := range []struct {
		query string
		want  int
	}{
		{"ALICE", 1},    // case-insensitive, actor
		{"release", 1},  // action
		{"USR_2", 1},    // target
		{"demo", 1},     // detail
		{"50%", 1},      // % is literal
		{"%", 1},        //
		{"r_d", 0},      // _ is literal: it does not match "user.delete"
		{"r.d", 1},      //
		{"_", 10},       // every target has an underscore
		{"desktop.", 8}, //
		{"dsk_", 8},     //
		{"carol", 7},    //
		{"nothing", 0},  //
	} {
		if got := len(list(store.AuditFilter{Query: c.query})); got != c.want {
			t.Errorf("Query %q: %d events, want %d", c.query, got, c.want)
		}
	}

	same(t, "since", len(list(store.AuditFilter{Since: at(time.Minute)})), 9)
	same(t, "since and query", len(list(store.AuditFilter{Since: at(time.Minute), Query: "bob"})), 1)
	same(t, "limit", len(list(store.AuditFilter{Limit: 3})), 3)
	same(t, "before and query", len(list(store.AuditFilter{Before: ids[5], Query: "carol"})), 2)

	// At defaults to now.
	e := &lobby.AuditEvent{Actor: "x", Action: "y"}
	must(t, f.s.AppendAudit(f.ctx, e))
	if time.Since(e.At) > time.Minute || e.At.Location() != time.UTC {
		t.Fatalf("At = %v, want now in UTC", e.At)
	}
}

// testTimesRoundTrip: times come back equal to microseconds and in UTC,
// whatever zone they went in with.
func testTimesRoundTrip(t *testing.T, f *fixture) {
	zone := time.FixedZone("UTC+5:30", 5*3600+1800)
	for _, in := range []time.Time{
		time.Date(2026, 1, 2, 3, 4, 5, 999999999, zone),
		time.Date(1999, 12, 31, 23, 59, 59, 1000, time.UTC),
		time.Date(2100, 6, 1, 0, 0, 0, 1, time.UTC),
		time.Now(), // with a monotonic reading
	} {
		u := &lobby.User{Username: fmt.Sprintf("u%d", f.next()), Role: lobby.RoleUser, Created: in}
		must(t, f.s.CreateUser(f.ctx, u, "h"))
		got, err := f.s.GetUser(f.ctx, u.ID)
		must(t, err)
		want := in.Truncate(time.Microsecond).UTC()
		if !got.Created.Equal(want) || got.Created.Location() != time.UTC || got.Created != u.Created {
			t.Errorf("stored %v, read %v (set on the struct: %v), want %v", in, got.Created, u.Created, want)
		}
	}
}
