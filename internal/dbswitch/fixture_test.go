package dbswitch

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"lobby/internal/hostconn"
	"lobby/internal/jobs"
	"lobby/internal/lobby"
	"lobby/internal/pki"
	"lobby/internal/provider/memory"
	"lobby/internal/server"
	"lobby/internal/store"
	"lobby/internal/store/postgres"
	"lobby/internal/store/sqlite"
)

const adminPW = "correct horse battery"

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// node is a standalone node's data directory, left by a real node that
// ran on it and stopped.
type node struct {
	dir string
	ca  string // the cluster CA's fingerprint
}

// runNode runs a real node (in-process agent with in-memory desktops,
// a demo pool) on dir, adds what a trial accumulates (a user, a join
// token, a host that joined, a job that failed, audit events), and stops
// it.
func runNode(t *testing.T, cfg server.Config) *node {
	t.Helper()
	prov, err := memory.New(memory.Config{})
	must(t, err)
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	cfg.Listen, cfg.PlainHTTP, cfg.AdminPassword = "127.0.0.1:0", true, adminPW
	cfg.LocalAgent, cfg.Provider, cfg.HashSlots, cfg.Logger = true, prov, 1, quiet
	if cfg.Demo == 0 {
		cfg.Demo = 2
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := server.New(ctx, cfg)
	must(t, err)
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() {
		cancel()
		must(t, <-done)
		must(t, s.Close())
	}()
	st := s.Store
	eventually(t, "the demo desktops run", func() bool {
		ds, err := st.ListDesktops(ctx, store.DesktopFilter{Power: lobby.PowerRunning}, store.ListOptions{})
		must(t, err)
		return len(ds) == cfg.Demo
	})
	hash, err := s.Auth.Hasher.Hash(ctx, "alice's password")
	must(t, err)
	must(t, st.CreateUser(ctx, &lobby.User{Username: "alice", Role: lobby.RoleUser, Groups: []string{"staff"}}, hash))
	must(t, st.CreateJoinToken(ctx, &store.JoinToken{Hash: "jt-" + cfg.DataDir, CreatedBy: "admin", Expires: time.Now().Add(time.Hour), MaxUses: 2}))
	joined := &lobby.Host{Name: "joined-" + lobby.NewID("h"), Provider: "local", State: lobby.HostDown}
	must(t, st.CreateHost(ctx, joined))
	must(t, st.SetHostCert(ctx, joined.ID, "abcdef"))
	must(t, st.SetHostReport(ctx, joined.ID, store.HostReport{State: lobby.HostUp, SiteID: cfg.SiteID, Seen: time.Now(), Address: "10.1.1.1", CPUPercent: 3.5}))
	offline := &lobby.Host{Name: "offline-" + lobby.NewID("h"), Provider: "local", State: lobby.HostDown}
	must(t, st.UpsertHost(ctx, offline))
	d := &lobby.Desktop{Name: "stray", HostID: offline.ID, Power: lobby.PowerStopped, ConsoleKind: "vnc"}
	must(t, st.CreateDesktop(ctx, d))
	job, err := s.Queue.Power(ctx, d.ID, "start")
	must(t, err)
	eventually(t, "the job on an offline host fails once", func() bool {
		j, err := s.Queue.Get(ctx, job.ID)
		must(t, err)
		return len(j.Errors) > 0
	})
	must(t, st.AppendAudit(ctx, &lobby.AuditEvent{Actor: "admin", Action: "test.mark", Target: cfg.DataDir}))
	return &node{dir: cfg.DataDir, ca: pki.FingerprintHex(s.CA.Fingerprint())}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(50 * time.Millisecond)
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

// tool runs the commands on dir, collecting their report.
func tool(dir, key string) (*Tool, *bytes.Buffer) {
	var out bytes.Buffer
	return &Tool{DataDir: dir, ClusterKey: key, Out: &out, Logger: quiet}, &out
}

// sameData compares two stores through the store and the work queue,
// the way a node sees them; hosts are compared but for their link state.
func sameData(t *testing.T, a, b store.Store) {
	t.Helper()
	ctx := t.Context()
	views := map[string]func(st store.Store) (any, error){
		"users":    func(st store.Store) (any, error) { return st.ListUsers(ctx, store.ListOptions{}) },
		"pools":    func(st store.Store) (any, error) { return st.ListPools(ctx, store.ListOptions{}) },
		"policies": func(st store.Store) (any, error) { return st.ListPolicies(ctx, store.ListOptions{}) },
		"desktops": func(st store.Store) (any, error) {
			return st.ListDesktops(ctx, store.DesktopFilter{}, store.ListOptions{})
		},
		"join tokens": func(st store.Store) (any, error) { return st.ListJoinTokens(ctx, store.ListOptions{}) },
		"audit":       func(st store.Store) (any, error) { return st.ListAudit(ctx, store.AuditFilter{}) },
		"hosts": func(st store.Store) (any, error) {
			hs, err := st.ListHosts(ctx, store.ListOptions{})
			for i := range hs {
				hs[i].State = ""
			}
			return hs, err
		},
		"admin password": func(st store.Store) (any, error) {
			_, hash, err := st.GetUserByName(ctx, "admin")
			return hash, err
		},
		"jobs": func(st store.Store) (any, error) {
			q, err := jobs.New(jobs.Config{Store: st, Hosts: hostconn.NewRegistry(), SiteID: 1, Logger: quiet})
			if err != nil {
				return nil, err
			}
			js, err := q.List(ctx, jobs.ListOptions{})
			for i := range js { // River rounds to milliseconds on SQLite
				js[i].Created = js[i].Created.Round(time.Millisecond)
				if f := js[i].Finalized; f != nil {
					ms := f.Round(time.Millisecond)
					js[i].Finalized = &ms
				}
			}
			return js, err
		},
	}
	for what, view := range views {
		va, err := view(a)
		must(t, err)
		vb, err := view(b)
		must(t, err)
		if !reflect.DeepEqual(canonical(t, va), canonical(t, vb)) {
			t.Errorf("%s differ:\n%s\n%s", what, jsonOf(va), jsonOf(vb))
		}
		if what == "jobs" && !strings.Contains(jsonOf(vb), "host") {
			t.Errorf("the jobs %s lack the failed job's error", jsonOf(vb))
		}
	}
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// canonical is v through JSON, so that a JSON argument's key order (which
// jsonb does not keep) does not matter.
func canonical(t *testing.T, v any) any {
	t.Helper()
	var out any
	must(t, json.Unmarshal([]byte(jsonOf(v)), &out))
	return out
}
