package storecopy

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"lobby/internal/hostconn"
	"lobby/internal/jobs"
	"lobby/internal/lobby"
	"lobby/internal/store"
	"lobby/internal/store/pgtest"
	"lobby/internal/store/postgres"
	"lobby/internal/store/sqlite"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// at is a fixed time with nanoseconds, which the stores keep to the
// microsecond.
func at(offset time.Duration) time.Time {
	return time.Date(2026, 3, 4, 5, 6, 7, 123456789, time.UTC).Add(offset)
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// newSQLite makes a migrated SQLite file and returns its path.
func newSQLite(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "lobby.db")
	db, err := sqlite.Open(t.Context(), path, quiet)
	must(t, err)
	must(t, db.Close())
	return path
}

// newPostgres makes a migrated PostgreSQL schema and returns its URL.
func newPostgres(t testing.TB) string {
	t.Helper()
	url := pgtest.URL(t)
	db, err := postgres.Open(t.Context(), url, quiet)
	must(t, err)
	must(t, db.Close())
	return url
}

func openSQLite(t testing.TB, path string) DB {
	t.Helper()
	db, err := OpenSQLite(path)
	must(t, err)
	t.Cleanup(func() { db.Close() })
	return db
}

func openPostgres(t testing.TB, url string) DB {
	t.Helper()
	db, err := OpenPostgres(t.Context(), url)
	must(t, err)
	t.Cleanup(func() { db.Close() })
	return db
}

// fill writes rows into every table through the store, and River jobs
// with every column set (and one with every optional column NULL).
func fill(t *testing.T, path string) {
	t.Helper()
	ctx := t.Context()
	st, err := sqlite.Open(ctx, path, quiet)
	must(t, err)
	defer st.Close()
	alice := &lobby.User{Username: "alice", Role: lobby.RoleAdmin, Groups: []string{"staff", "ops"}}
	bob := &lobby.User{Username: "bob", Role: lobby.RoleUser, Groups: nil, Disabled: true}
	must(t, st.CreateUser(ctx, alice, "hash-a"))
	must(t, st.CreateUser(ctx, bob, "hash-b"))
	must(t, st.CreateToken(ctx, &store.Token{UserID: alice.ID, Hash: "t1", Name: "login", Created: at(0), Expires: at(time.Hour)}))
	must(t, st.CreateToken(ctx, &store.Token{UserID: alice.ID, Hash: "t2", Name: "ci", Created: at(0)}))
	must(t, st.RevokeToken(ctx, mustToken(t, st, "t1")))
	h := &lobby.Host{Name: "host-a", Provider: "local", State: lobby.HostUp, SiteID: 1, LastSeen: at(2 * time.Second)}
	must(t, st.CreateHost(ctx, h))
	must(t, st.SetHostCert(ctx, h.ID, "0a1b2c"))
	must(t, st.SetHostReport(ctx, h.ID, store.HostReport{State: lobby.HostUp, SiteID: 1, Seen: at(3 * time.Second), Address: "10.0.0.2", AgentVersion: "1.2", CPUPercent: 12.5, MemTotal: 1 << 33, MemUsed: 1 << 30, Running: 1}))
	h2 := &lobby.Host{Name: "host-b", Provider: "local", State: lobby.HostDown}
	must(t, st.UpsertHost(ctx, h2))
	p := &lobby.Pool{Name: "lab", MinSize: 1, MaxSize: 4, MinFree: 1, NamePattern: "lab-{n}", Template: "default"}
	must(t, st.CreatePool(ctx, p))
	d1 := &lobby.Desktop{Name: "lab-1", HostID: h.ID, PoolID: p.ID, Power: lobby.PowerRunning, ConsoleKind: "vnc", ConsolePort: 5901, Tags: []string{"x", "y"}}
	d2 := &lobby.Desktop{Name: "lab-2", HostID: h2.ID, Power: lobby.PowerStopped, ConsoleKind: "vnc"}
	must(t, st.CreateDesktop(ctx, d1))
	must(t, st.CreateDesktop(ctx, d2))
	pol := &lobby.Policy{Name: "everyone", Pools: []string{p.ID}, Users: []string{"*"}, Groups: []string{"staff"}, MaxDesktops: 1, Mode: lobby.Persistent,
		Release: lobby.ReleasePlan{OnLogoff: true, DisconnectMinutes: 30, AtTime: "19:30"}, PowerPlan: lobby.PowerStop, Priority: 3}
	must(t, st.CreatePolicy(ctx, pol))
	a := &lobby.Assignment{DesktopID: d1.ID, UserID: alice.ID, PoolID: p.ID, PolicyID: pol.ID, Mode: lobby.Persistent}
	must(t, st.AssignDesktop(ctx, a))
	must(t, st.SetConnected(ctx, a.ID, false, at(time.Minute)))
	must(t, st.CreateTicket(ctx, &store.Ticket{Hash: "tk", UserID: alice.ID, DesktopID: d1.ID, Created: at(0), Expires: at(time.Minute)}))
	must(t, st.CreateJoinToken(ctx, &store.JoinToken{Hash: "jt", Note: "first", CreatedBy: "alice", Expires: at(24 * time.Hour), MaxUses: 3}))
	for _, action := range []string{"user.create", "pool.create", "policy.create"} {
		must(t, st.AppendAudit(ctx, &lobby.AuditEvent{At: at(time.Second), Actor: "alice", Action: action, Target: "x", Detail: `{"k":"v"}`, Remote: "127.0.0.1"}))
	}
	must(t, st.SetSetting(ctx, "cluster.ca", `{"cert":"AAEC"}`))
	// Rows of running nodes, which the copy leaves out.
	must(t, st.RegisterNode(ctx, &lobby.Node{SiteID: 1, Name: "n1", Started: at(0), Heartbeat: at(0)}, "ins1", at(-time.Hour)))
	_, _, err = st.AcquireLease(ctx, "singletons", 1, "ins1", at(0), time.Minute)
	must(t, err)
	// River's jobs: one with every column set, one with the optional
	// ones NULL and a time as River's driver also writes them (Go's
	// time.String).
	w := st.Writer()
	_, err = w.ExecContext(ctx, `INSERT INTO river_job (args, attempt, attempted_at, attempted_by, created_at, errors, finalized_at, kind, max_attempts,
		metadata, priority, queue, state, scheduled_at, tags, unique_key, unique_states) VALUES
		(jsonb('{"desktop_id":"dsk_1","op":"stop"}'), 2, '2026-03-04 05:06:07.123', jsonb('["site-1","site-2"]'), '2026-03-04 05:00:00.5',
		 jsonb('[{"at":"2026-03-04T05:06:07.123Z","attempt":1,"error":"host down","trace":""}]'), NULL, 'desktop.power', 5,
		 jsonb('{"output":{"site_id":1}}'), 2, 'default', 'retryable', '2026-03-04 05:07:00', jsonb('["a","b"]'), X'01ff', 5),
		(jsonb('{}'), 0, NULL, NULL, '2026-03-04 05:00:01', NULL, '2026-03-04 05:00:02.5 +0000 UTC m=+0.859915285', 'desktop.provision', 25,
		 jsonb('{}'), 1, 'default', 'completed', '2026-03-04 05:00:01', jsonb('[]'), NULL, NULL)`)
	must(t, err)
	_, err = w.ExecContext(ctx, `INSERT INTO river_queue (name, created_at, metadata, paused_at, updated_at) VALUES ('default', '2026-03-04 05:00:00', jsonb('{}'), NULL, '2026-03-04 05:00:00')`)
	must(t, err)
}

// filledPair is a SQLite file filled by fill and an empty migrated
// PostgreSQL schema, with a copy's handle on each.
func filledPair(t *testing.T) (srcPath, url string, src, pg DB) {
	t.Helper()
	srcPath, url = newSQLite(t), newPostgres(t)
	fill(t, srcPath)
	return srcPath, url, openSQLite(t, srcPath), openPostgres(t, url)
}

func mustToken(t *testing.T, st store.Store, hash string) string {
	t.Helper()
	tok, err := st.GetToken(t.Context(), hash)
	must(t, err)
	return tok.ID
}

// dump reads every copied table in the neutral form, one string per row.
func dump(t *testing.T, lite, pg DB, from DB) map[string][]string {
	t.Helper()
	sch, err := readSchema(t.Context(), lite.SQL, pg.SQL)
	must(t, err)
	tables, err := sch.copyable()
	must(t, err)
	out := map[string][]string{}
	for _, tb := range tables {
		rows := []string{}
		must(t, scan(t.Context(), from.SQL, from.postgres(), tb, tb.cols, func(vals []any) error {
			for i, c := range tb.cols {
				if s, ok := vals[i].(string); ok && (c.kind == kJSON || c.kind == kStrArray || c.kind == kJSONArray) {
					vals[i] = canonicalJSON(t, s)
				}
			}
			rows = append(rows, keyString(vals))
			return nil
		}))
		out[tb.name] = rows
	}
	return out
}

// canonicalJSON writes JSON one way: jsonb keeps neither spacing nor key
// order.
func canonicalJSON(t *testing.T, s string) string {
	t.Helper()
	var v any
	must(t, json.Unmarshal([]byte(s), &v))
	b, err := json.Marshal(v)
	must(t, err)
	return string(b)
}

func TestCopyBothWays(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	srcPath, url, src, pg := filledPair(t)

	rep, err := Copy(ctx, src, pg, Options{})
	must(t, err)
	counts := map[string]int64{}
	for _, r := range rep.Tables {
		counts[r.Table] = r.Rows
	}
	want := map[string]int64{"users": 2, "tokens": 2, "hosts": 2, "pools": 1, "desktops": 2, "policies": 1, "assignments": 1,
		"tickets": 1, "join_tokens": 1, "audit": 3, "settings": 1, "river_job": 2, "river_queue": 1}
	if !reflect.DeepEqual(counts, want) {
		t.Fatalf("copied %v, want %v", counts, want)
	}
	for _, skipped := range []string{"nodes", "leases"} {
		if !strings.Contains(strings.Join(rep.Skipped, " "), skipped+" (") {
			t.Errorf("skipped %v, want %s named with its reason", rep.Skipped, skipped)
		}
	}
	before := dump(t, src, pg, src)
	if got := dump(t, src, pg, pg); !reflect.DeepEqual(got, before) {
		t.Fatalf("PostgreSQL holds\n%v\nwant\n%v", got, before)
	}
	sameThroughStores(t, srcPath, url)

	// The sequences moved past the copied rows.
	pst := openStore(t, store.Postgres, url)
	e := &lobby.AuditEvent{Actor: "system", Action: "after.copy"}
	must(t, pst.AppendAudit(ctx, e))
	if e.ID != 4 {
		t.Errorf("the next audit event on PostgreSQL has ID %d, want 4", e.ID)
	}

	// Back into a new SQLite file: the same rows again.
	backPath := newSQLite(t)
	back := openSQLite(t, backPath)
	_, err = Copy(ctx, pg, back, Options{})
	must(t, err)
	after := dump(t, back, pg, back)
	before["audit"] = dump(t, src, pg, pg)["audit"] // with the event added on PostgreSQL
	if !reflect.DeepEqual(after, before) {
		t.Fatalf("SQLite holds after the round trip\n%v\nwant\n%v", after, before)
	}
	bst := openStore(t, store.SQLite, backPath)
	e = &lobby.AuditEvent{Actor: "system", Action: "after.copy.back"}
	must(t, bst.AppendAudit(ctx, e))
	if e.ID != 5 {
		t.Errorf("the next audit event on SQLite has ID %d, want 5", e.ID)
	}
}

func openStore(t *testing.T, dialect, target string) store.Store {
	t.Helper()
	var st store.Store
	var err error
	if dialect == store.Postgres {
		st, err = postgres.Open(t.Context(), target, quiet)
	} else {
		st, err = sqlite.Open(t.Context(), target, quiet)
	}
	must(t, err)
	t.Cleanup(func() { st.Close() })
	return st
}

// sameThroughStores reads both databases through the store and the work
// queue, the way a node sees them, and compares what they answer.
func sameThroughStores(t *testing.T, litePath, pgURL string) {
	t.Helper()
	ctx := t.Context()
	views := map[string]func(st store.Store) (any, error){
		"users":    func(st store.Store) (any, error) { return st.ListUsers(ctx, store.ListOptions{}) },
		"hosts":    func(st store.Store) (any, error) { return st.ListHosts(ctx, store.ListOptions{}) },
		"pools":    func(st store.Store) (any, error) { return st.ListPools(ctx, store.ListOptions{}) },
		"policies": func(st store.Store) (any, error) { return st.ListPolicies(ctx, store.ListOptions{}) },
		"desktops": func(st store.Store) (any, error) {
			return st.ListDesktops(ctx, store.DesktopFilter{}, store.ListOptions{})
		},
		"assignments": func(st store.Store) (any, error) { return st.ListAssignments(ctx, store.AssignmentFilter{}) },
		"join tokens": func(st store.Store) (any, error) { return st.ListJoinTokens(ctx, store.ListOptions{}) },
		"audit":       func(st store.Store) (any, error) { return st.ListAudit(ctx, store.AuditFilter{}) },
		"token":       func(st store.Store) (any, error) { return st.GetToken(ctx, "t1") },
		"setting":     func(st store.Store) (any, error) { return st.GetSetting(ctx, "cluster.ca") },
		"password": func(st store.Store) (any, error) {
			_, hash, err := st.GetUserByName(ctx, "bob")
			return hash, err
		},
		"jobs": func(st store.Store) (any, error) {
			q, err := jobs.New(jobs.Config{Store: st, Hosts: hostconn.NewRegistry(), SiteID: 1, Logger: quiet})
			if err != nil {
				return nil, err
			}
			return q.List(ctx, jobs.ListOptions{})
		},
	}
	lite, pg := openStore(t, store.SQLite, litePath), openStore(t, store.Postgres, pgURL)
	for what, view := range views {
		a, err := view(lite)
		must(t, err)
		b, err := view(pg)
		must(t, err)
		ja, _ := json.Marshal(a)
		jb, _ := json.Marshal(b)
		if canonicalJSON(t, string(ja)) != canonicalJSON(t, string(jb)) {
			t.Errorf("%s differ:\nSQLite     %s\nPostgreSQL %s", what, ja, jb)
		}
		if what == "jobs" && !strings.Contains(string(jb), "host down") {
			t.Errorf("jobs on PostgreSQL %s lack the copied error", jb)
		}
	}
}

func TestCopyRefusesATargetWithData(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	_, url, src, pg := filledPair(t)
	st := openStore(t, store.Postgres, url)
	must(t, st.CreateUser(ctx, &lobby.User{Username: "carol", Role: lobby.RoleUser}, "h"))
	before := dump(t, src, pg, pg)

	_, err := Copy(ctx, src, pg, Options{})
	var ne *NotEmptyError
	if !errors.As(err, &ne) || Summary(ne.Rows) != "users 1" {
		t.Fatalf("copy into a database with a user: %v, want *NotEmptyError naming users 1", err)
	}
	if after := dump(t, src, pg, pg); !reflect.DeepEqual(after, before) {
		t.Fatalf("the refused copy changed the target:\n%v\nwas\n%v", after, before)
	}
}

func TestCopyIsAllOrNothing(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	_, _, src, pg := filledPair(t)
	boom := errors.New("boom")
	_, err := Copy(ctx, src, pg, Options{Transform: map[string]func(Row) error{
		"settings": func(Row) error { return boom }, // copied after most tables
	}})
	if !errors.Is(err, boom) {
		t.Fatalf("copy: %v, want the transform's error", err)
	}
	info, err := Inspect(ctx, pg)
	must(t, err)
	if !info.Empty() {
		t.Fatalf("a failed copy left %s", Summary(info.Rows))
	}
}

func TestCopyRefusesDifferentSchemaVersions(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	src := openSQLite(t, newSQLite(t))
	pg := openPostgres(t, pgtest.URL(t)) // not migrated
	if _, err := Copy(ctx, src, pg, Options{}); err == nil || !strings.Contains(err.Error(), "schema") {
		t.Fatalf("copy into an unmigrated database: %v, want a schema error", err)
	}
}

func TestMissing(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	srcPath, url, src, pg := filledPair(t)
	_, err := Copy(ctx, src, pg, Options{})
	must(t, err)
	missing, err := Missing(ctx, src, pg, CompareOptions{})
	must(t, err)
	if len(missing) != 0 {
		t.Fatalf("right after a copy, missing %v", missing)
	}
	lst, pst := openStore(t, store.SQLite, srcPath), openStore(t, store.Postgres, url)
	must(t, lst.CreateUser(ctx, &lobby.User{Username: "dave", Role: lobby.RoleUser}, "h"))
	must(t, pst.CreatePool(ctx, &lobby.Pool{Name: "new", MaxSize: 1, NamePattern: "n-{n}", Template: "t"}))
	must(t, pst.AppendAudit(ctx, &lobby.AuditEvent{Actor: "x", Action: "y"}))
	missing, err = Missing(ctx, src, pg, CompareOptions{})
	must(t, err)
	if got := Summary(missing); got != "users 1" {
		t.Errorf("SQLite rows missing from PostgreSQL: %q, want users 1", got)
	}
	missing, err = Missing(ctx, pg, src, CompareOptions{})
	must(t, err)
	if got := Summary(missing); got != "audit 1, pools 1" {
		t.Errorf("PostgreSQL rows missing from SQLite: %q, want audit 1, pools 1", got)
	}
}

// TestCopyRefusesSchemasThatDiffer checks that a column on one side only,
// or of a type the copy does not know, stops the copy before it writes,
// unless it is in a table that is not copied.
func TestCopyRefusesSchemasThatDiffer(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	src, pg := openSQLite(t, newSQLite(t)), openPostgres(t, newPostgres(t))
	for _, q := range []string{"ALTER TABLE nodes ADD COLUMN whatever inet", "ALTER TABLE leases ADD COLUMN more text"} {
		_, err := pg.SQL.ExecContext(ctx, q)
		must(t, err)
	}
	_, err := Copy(ctx, src, pg, Options{})
	must(t, err) // differences in tables that are not copied do not matter

	for _, tt := range []struct{ pg, lite, want string }{
		{"ALTER TABLE pools ADD COLUMN extra text", "", "column pools.extra exists in PostgreSQL only"},
		{"", "ALTER TABLE users ADD COLUMN extra text", "column users.extra exists in SQLite only"},
		{"ALTER TABLE policies ADD COLUMN net inet", "ALTER TABLE policies ADD COLUMN net TEXT", "column policies.net: type inet"},
	} {
		src, pg := openSQLite(t, newSQLite(t)), openPostgres(t, newPostgres(t))
		if tt.pg != "" {
			_, err := pg.SQL.ExecContext(ctx, tt.pg)
			must(t, err)
		}
		if tt.lite != "" {
			_, err := src.SQL.ExecContext(ctx, tt.lite)
			must(t, err)
		}
		if _, err := Copy(ctx, src, pg, Options{}); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("copy with %q%q: %v, want %q", tt.pg, tt.lite, err, tt.want)
		}
	}
}
