package bench

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"lobby/internal/lobby"
	"lobby/internal/store/pgtest"
)

// TestCluster runs the cluster benchmark at a tiny size: one node, then
// two, behind a real HAProxy on a real PostgreSQL.
func TestCluster(t *testing.T) {
	t.Parallel()
	needs(t, "haproxy")
	bin := buildLobby(t)
	r, err := RunCluster(context.Background(), ClusterConfig{Binary: bin, Nodes: []int{1, 2}, Users: 4, Desktops: 4, Concurrency: 2,
		Duration: 300 * time.Millisecond, Warmup: 100 * time.Millisecond, Postgres: pgtest.URL(t), DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Steps) != 2 || r.Balancer == "" || !strings.Contains(r.NodeHow, "--site-id 2") {
		t.Fatalf("result %+v", r)
	}
	for i, s := range r.Steps {
		if s.Nodes != i+1 || s.Assignments == 0 || s.Errors != 0 || s.Rate() <= 0 || s.Connect.P50 <= 0 || s.Release.N == 0 {
			t.Errorf("step %+v", s)
		}
		h := s.Check
		if h.Connects <= s.Assignments || h.Assigns != h.Connects || h.Releases != h.Assigns || h.Twice != 0 || h.Left != 0 {
			t.Errorf("%d nodes: the store's check %+v, want every connect (warm-up too) assigned and released once", s.Nodes, h)
		}
		c := s.CPU
		// HAProxy's CPU may round to nothing in a window this short (the
		// kernel counts in 10 ms ticks): its process must be read (-1
		// when not), not busy.
		if len(c.Nodes) != s.Nodes || c.NodesTotal() <= 0 || c.Balancer < 0 || c.Postgres <= 0 || c.Bench <= 0 || s.Idle.Wall <= 0 || len(s.Idle.Nodes) != s.Nodes {
			t.Errorf("%d nodes: CPU %+v, want every part found and measured", s.Nodes, c)
		}
	}
	printed(t, r.Print, "assignments/s", "held by two at once", "no failed user request beyond one retry: 0 failed, met", "PostgreSQL")
}

func TestHoldCheck(t *testing.T) {
	t.Parallel()
	ev := func(id int64, action, desktop, who string) lobby.AuditEvent {
		return lobby.AuditEvent{ID: id, Action: action, Target: desktop, Actor: who}
	}
	tests := []struct {
		name   string
		events []lobby.AuditEvent
		twice  int
	}{
		{"alternating", []lobby.AuditEvent{
			ev(1, "desktop.assign", "d1", "a"), ev(2, "desktop.assign", "d2", "b"), ev(3, "desktop.release", "d1", "a"),
			ev(4, "desktop.assign", "d1", "b"), ev(5, "desktop.release", "d2", "b"), ev(6, "desktop.release", "d1", "b"),
			ev(7, "desktop.create", "d3", "system"),
		}, 0},
		{"given while held", []lobby.AuditEvent{
			ev(1, "desktop.assign", "d1", "a"), ev(2, "desktop.assign", "d1", "b"), ev(3, "desktop.release", "d1", "a"),
		}, 2},
		{"released by another", []lobby.AuditEvent{
			ev(1, "desktop.assign", "d1", "a"), ev(2, "desktop.release", "d1", "b"),
		}, 1},
	}
	for _, tt := range tests {
		var h HoldCheck
		h.count(tt.events)
		if h.Twice != tt.twice || (tt.twice > 0) != (h.First != "") {
			t.Errorf("%s: %+v, want %d", tt.name, h, tt.twice)
		}
		if h.Twice > 0 && h.err() == nil {
			t.Errorf("%s: no error for %+v", tt.name, h)
		}
	}
	if err := (HoldCheck{Assigns: 3, Releases: 3, Connects: 2}).err(); err == nil {
		t.Error("an assign event without its connect is not an error")
	}
	if err := (HoldCheck{Assigns: 3, Releases: 3, Connects: 3}).err(); err != nil {
		t.Errorf("a clean check: %v", err)
	}
}

// TestAssignRetry checks the load's one retry against a server that fails
// each first attempt: a 5xx or a dropped connection is sent again, and a
// retried release answered 403 (the first went through) counts as done.
func TestAssignRetry(t *testing.T) {
	t.Parallel()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch k := n.Add(1); {
		case k == 1:
			w.WriteHeader(http.StatusServiceUnavailable) // the balancer had no node
		case k == 3:
			hj, _ := w.(http.Hijacker)
			c, _, _ := hj.Hijack()
			c.Close() // a node died mid-request
		case k == 4 && r.URL.Path == "/api/v1/release":
			http.Error(w, `{"error":{"code":"forbidden","message":"not assigned to you"}}`, http.StatusForbidden)
		case k == 5:
			http.Error(w, `{"error":{"code":"conflict","message":"pool exhausted"}}`, http.StatusConflict)
		default:
			w.Write([]byte(`{"desktop":{"id":"d1"}}`))
		}
	}))
	defer srv.Close()
	l := &assignLoad{url: srv.URL, hc: NewHTTPClient(1), retry: true}
	var retries [2]int
	ctx := context.Background()
	if _, err := l.call(ctx, srv.URL+"/api/v1/connect", "", []byte(`{}`), nil, &retries); err != nil {
		t.Fatalf("503 then 200: %v", err)
	}
	if _, err := l.call(ctx, srv.URL+"/api/v1/release", "", []byte(`{}`), nil, &retries, http.StatusForbidden); err != nil {
		t.Fatalf("a dropped connection then 403 on a release: %v", err)
	}
	if status, err := l.call(ctx, srv.URL+"/api/v1/connect", "", []byte(`{}`), nil, &retries); status != http.StatusConflict || err == nil {
		t.Fatalf("409 is an answer, not retried: %d %v", status, err)
	}
	if retries != [2]int{2, 2} || n.Load() != 5 {
		t.Fatalf("retries %v after %d requests, want 2 retried, both then ok, in 5 requests", retries, n.Load())
	}
	l.retry = false
	n.Store(0)
	if _, err := l.call(ctx, srv.URL+"/api/v1/connect", "", []byte(`{}`), nil, &retries); err == nil || n.Load() != 1 {
		t.Fatalf("without retry: %v after %d requests", err, n.Load())
	}
}
