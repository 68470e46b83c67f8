package server

import (
	"context"
	"database/sql"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"lobby/internal/health"
	"lobby/internal/pki"
	"lobby/internal/provider/memory"
	"lobby/internal/store/pgtest"
)

// TestHealthAPI runs the cluster's health check from a node: every check
// of a one-node cluster passes (the node reaches its own address, its
// clock is the database's), the report downloads as HTML, and only
// operators and administrators may run it; the ping needs no sign-in.
func TestHealthAPI(t *testing.T) {
	t.Parallel()
	_, base := node(t, "sqlite", 0)
	admin := login(t, base, "admin", adminPW)

	var rep health.Report
	eventually(t, "a healthy report with the node's probe of itself", func() bool {
		admin.want(200, "GET", "/api/v1/health", nil, &rep)
		_, probed := rep.Check("reach/1-1")
		return probed && rep.Status == health.OK
	})
	for _, id := range []string{"store", "versions", "schema", "leader", "node/1", "ready/1", "store/1", "clock/1", "cert/1", "web-cert/1", "port/1", "reach/1-1"} {
		if c, ok := rep.Check(id); !ok || c.Status != health.OK {
			t.Errorf("check %s = %+v (present %v), want ok", id, c, ok)
		}
	}
	if len(rep.Nodes) != 1 || !rep.Nodes[0].Ready || !rep.Nodes[0].Leader || !strings.HasPrefix(rep.From, "node 1 (") {
		t.Errorf("report = %+v, want node 1 ready and leading, checked by node 1", rep)
	}
	if len(rep.Agents) != 1 || rep.Agents[0].State != "up" {
		t.Errorf("agents = %+v, want the in-process agent up", rep.Agents)
	}

	req, _ := http.NewRequest("GET", base+"/api/v1/health?format=html", nil)
	req.Header.Set("Authorization", "Bearer "+admin.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Disposition"), `attachment; filename="lobby-health-`) ||
		!strings.Contains(string(body), "Lobby cluster health") || !strings.Contains(string(body), `data-check="clock/1"`) {
		t.Errorf("HTML report: %d %v\n%.300s", resp.StatusCode, resp.Header, body)
	}
	var e apiError
	admin.want(400, "GET", "/api/v1/health?format=xml", nil, &e)

	admin.want(201, "POST", "/api/v1/users", map[string]any{"username": "bob", "password": "bob's password", "role": "user"}, nil)
	bob := login(t, base, "bob", "bob's password")
	bob.want(403, "GET", "/api/v1/health", nil, &e)
	anon := &apiClient{t: t, base: base}
	anon.want(401, "GET", "/api/v1/health", nil, &e)

	var ping health.Ping
	anon.want(200, "GET", health.PingPath, nil, &ping)
	if ping.SiteID != 1 || ping.Instance == "" || ping.NotReady != "" {
		t.Errorf("ping = %+v, want site 1, ready", ping)
	}
}

// TestWatchdogStoreOutage stops a real PostgreSQL under a node (SIGSTOP:
// it hangs, as a database whose host froze): the node's /readyz answers
// 503 naming the database, and 200 again once the database goes on,
// without a restart.
func TestWatchdogStoreOutage(t *testing.T) {
	t.Parallel()
	if os.Getenv(pgtest.EnvURL) == "" && os.Getenv("CI") != "true" {
		t.Skip("PostgreSQL tests run under `make test` (or go run ./cmd/withpg)")
	}
	dir, err := os.MkdirTemp("", "lobby-watchdog-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	pg, err := pgtest.Start(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pg.Resume(); pg.Stop() })

	prov, err := memory.New(memory.Config{})
	if err != nil {
		t.Fatal(err)
	}
	_, base := start(t, Config{
		Listen: "127.0.0.1:0", DataDir: t.TempDir(), PlainHTTP: true, AdminPassword: adminPW, LocalAgent: true, Provider: prov, HashSlots: 2,
		Postgres: pg.URL(), ClusterKey: pki.NewClusterKeyString(), WatchdogStore: 2 * time.Second,
		Logger: slog.New(slog.DiscardHandler),
	})
	ready := func() (int, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", base+"/readyz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	eventually(t, "the node is ready", func() bool { code, _ := ready(); return code == 200 })

	if err := pg.Pause(); err != nil {
		t.Fatal(err)
	}
	var body string
	eventually(t, "/readyz says the database is silent", func() bool {
		var code int
		code, body = ready()
		return code == 503 && strings.Contains(body, "the database has not answered for")
	})
	t.Logf("while the database hangs, /readyz says: %s", strings.TrimSpace(body))

	if err := pg.Resume(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "/readyz recovers by itself", func() bool { code, _ := ready(); return code == 200 })
}

// TestWatchdogWritesBlocked: another process holds the SQLite database's
// write lock (a backup tool, a stray sqlite3 shell): the node can read but
// not write, says so on /readyz, and recovers once the lock is released.
func TestWatchdogWritesBlocked(t *testing.T) {
	t.Parallel()
	prov, err := memory.New(memory.Config{})
	if err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	_, base := start(t, Config{
		Listen: "127.0.0.1:0", DataDir: data, PlainHTTP: true, AdminPassword: adminPW, LocalAgent: true, Provider: prov, HashSlots: 2,
		WatchdogStore: 2 * time.Second, Logger: slog.New(slog.DiscardHandler),
	})
	eventually(t, "the node is ready", func() bool { return getStatus(t, base+"/readyz") == 200 })

	other, err := sql.Open("sqlite", filepath.Join(data, "lobby.db")+"?_pragma=busy_timeout(30000)")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	conn, err := other.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(t.Context(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	var body string
	eventually(t, "/readyz says the database does not answer", func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body = string(b)
		return resp.StatusCode == 503 && strings.Contains(body, "the database has not answered for")
	})
	t.Logf("while another process holds the write lock, /readyz says: %s", strings.TrimSpace(body))
	if _, err := conn.ExecContext(t.Context(), "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "/readyz recovers by itself", func() bool { return getStatus(t, base+"/readyz") == 200 })
}
