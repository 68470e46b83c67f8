package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"lobby/internal/auth"
	"lobby/internal/pki"
	"lobby/internal/provider/memory"
	"lobby/internal/store/pgtest"
)

const adminPW = "correct horse battery"

// node starts a real node (HTTP over TCP, real store, real queue) whose
// agent uses the in-memory provider. dialect is "sqlite" or "postgres".
func node(t *testing.T, dialect string, demo int) (*Server, string) {
	t.Helper()
	prov, err := memory.New(memory.Config{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		Listen: "127.0.0.1:0", DataDir: t.TempDir(), PlainHTTP: true, AdminPassword: adminPW,
		LocalAgent: true, Provider: prov, Demo: demo, HashSlots: 2,
		Logger: testLogger(t),
	}
	if dialect == "postgres" {
		cfg.Postgres, cfg.ClusterKey = pgtest.URL(t), pki.NewClusterKeyString()
	}
	return start(t, cfg)
}

func start(t *testing.T, cfg Config) (*Server, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s, err := New(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
		s.Close()
	})
	return s, s.URL()
}

type apiClient struct {
	t     *testing.T
	base  string
	token string
}

// call sends a request and decodes the answer into out (if not nil).
func (c *apiClient) call(method, path string, body any, out any) int {
	c.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		buf, _ := json.Marshal(b)
		r = bytes.NewReader(buf)
	}
	req, err := http.NewRequest(method, c.base+path, r)
	if err != nil {
		c.t.Fatal(err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			c.t.Fatalf("%s %s: %d %s: %v", method, path, resp.StatusCode, raw, err)
		}
	}
	return resp.StatusCode
}

func (c *apiClient) want(status int, method, path string, body any, out any) {
	c.t.Helper()
	var raw json.RawMessage
	got := c.call(method, path, body, &raw)
	if got != status {
		c.t.Fatalf("%s %s: got %d %s, want %d", method, path, got, raw, status)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			c.t.Fatal(err)
		}
	}
}

func login(t *testing.T, base, user, pw string) *apiClient {
	t.Helper()
	c := &apiClient{t: t, base: base}
	var res struct{ Token string }
	c.want(200, "POST", "/api/v1/login", map[string]string{"username": user, "password": pw}, &res)
	c.token = res.Token
	return c
}

type apiError struct {
	Error struct{ Code, Message string }
}

// eventually polls cond until it holds or a generous deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type list struct {
	Items []map[string]any
	Next  string
}

func TestAPI(t *testing.T) {
	t.Parallel()
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			_, base := node(t, dialect, 0)
			testAPI(t, base)
		})
	}
}

func testAPI(t *testing.T, base string) {
	anon := &apiClient{t: t, base: base}
	var e apiError
	if anon.call("POST", "/api/v1/login", map[string]string{"username": "admin", "password": "wrong password"}, &e) != 401 || e.Error.Code != "unauthorized" {
		t.Fatalf("wrong password: %+v", e)
	}
	if anon.call("GET", "/api/v1/pools", nil, &e) != 401 {
		t.Fatal("no token accepted")
	}
	admin := login(t, base, "admin", adminPW)

	// Users.
	var alice map[string]any
	admin.want(201, "POST", "/api/v1/users", map[string]any{"username": "alice", "password": "alice password", "groups": []string{"staff"}, "role": "user"}, &alice)
	if alice["id"] == "" || alice["username"] != "alice" {
		t.Fatalf("created user %v", alice)
	}
	admin.want(409, "POST", "/api/v1/users", map[string]any{"username": "alice", "password": "alice password"}, nil)
	admin.want(400, "POST", "/api/v1/users", map[string]any{"username": "bob", "password": "short"}, nil)
	admin.want(400, "POST", "/api/v1/users", map[string]any{"username": "bob", "password": "long enough pw", "role": "king"}, nil)
	admin.want(201, "POST", "/api/v1/users", map[string]any{"username": "bob", "password": "bob password"}, nil)

	// Pools: desktops appear as the manager provisions them.
	var pool map[string]any
	admin.want(201, "POST", "/api/v1/pools", map[string]any{"name": "staff", "min_size": 2, "max_size": 2, "min_free": 2}, &pool)
	eventually(t, "2 running desktops", func() bool {
		var l list
		admin.want(200, "GET", "/api/v1/desktops?pool=staff", nil, &l)
		running := 0
		for _, d := range l.Items {
			if d["power"] == "running" {
				running++
			}
		}
		return running == 2
	})

	// Policy by group; connect, reconnect, exhaustion, release.
	admin.want(400, "POST", "/api/v1/policies", map[string]any{"name": "p", "pools": []string{"nope"}, "groups": []string{"staff"}}, nil)
	admin.want(201, "POST", "/api/v1/policies", map[string]any{"name": "staff", "pools": []string{"staff"}, "groups": []string{"staff"}, "release": map[string]any{"on_logoff": true}}, nil)
	a := login(t, base, "alice", "alice password")
	b := login(t, base, "bob", "bob password")
	b.want(403, "POST", "/api/v1/connect", map[string]string{"pool": "staff"}, nil)
	a.want(404, "POST", "/api/v1/connect", map[string]string{"pool": "nope"}, nil)
	a.want(403, "GET", "/api/v1/users", nil, nil)
	a.want(403, "POST", "/api/v1/pools", map[string]any{"name": "x", "max_size": 1}, nil)
	var c1, c2 struct {
		Desktop map[string]any
		VNCURL  string `json:"vnc_url"`
		Ticket  string
	}
	a.want(200, "POST", "/api/v1/connect", map[string]string{"pool": "staff"}, &c1)
	if !strings.HasPrefix(c1.VNCURL, "/gateway/vnc?ticket=") || c1.Desktop["id"] == nil {
		t.Fatalf("connect answer %+v", c1)
	}
	a.want(200, "POST", "/api/v1/connect", map[string]string{"pool": "staff"}, &c2)
	if c2.Desktop["id"] != c1.Desktop["id"] || c2.Ticket == c1.Ticket {
		t.Fatalf("reconnect gave desktop %v ticket reuse=%v", c2.Desktop["id"], c2.Ticket == c1.Ticket)
	}
	// Give bob the pool too, then exhaust it with a third user.
	admin.want(200, "PUT", "/api/v1/policies/staff", map[string]any{"users": []string{"bob", "carol"}}, nil)
	admin.want(201, "POST", "/api/v1/users", map[string]any{"username": "carol", "password": "carol password"}, nil)
	b.want(200, "POST", "/api/v1/connect", map[string]string{"pool": "staff"}, nil)
	carol := login(t, base, "carol", "carol password")
	var ex apiError
	if carol.call("POST", "/api/v1/connect", map[string]string{"pool": "staff"}, &ex) != 409 || !strings.Contains(ex.Error.Message, "staff") {
		t.Fatalf("exhausted pool: %+v", ex)
	}
	var rel struct{ Released bool }
	b.want(403, "POST", "/api/v1/release", map[string]string{"desktop": c1.Desktop["id"].(string)}, nil)
	a.want(200, "POST", "/api/v1/release", map[string]string{"desktop": c1.Desktop["id"].(string)}, &rel)
	if !rel.Released {
		t.Fatal("release on logoff did not release")
	}
	carol.want(200, "POST", "/api/v1/connect", map[string]string{"pool": "staff"}, nil)

	// Jobs ran on this node's site (River marks them completed just after
	// the worker returns, so poll).
	eventually(t, "the provisioning jobs completed on site 1", func() bool {
		var jobs struct {
			Items []struct {
				Kind, State string
				SiteID      int `json:"site_id"`
			}
		}
		admin.want(200, "GET", "/api/v1/jobs?state=completed", nil, &jobs)
		for _, j := range jobs.Items {
			if j.SiteID != 1 {
				t.Fatalf("job %s completed by site %d, want 1", j.Kind, j.SiteID)
			}
		}
		return len(jobs.Items) >= 2
	})

	// Audit log records who did what.
	var audit list
	admin.want(200, "GET", "/api/v1/audit?q=pool.create", nil, &audit)
	if len(audit.Items) != 1 || audit.Items[0]["actor"] != "admin" || audit.Items[0]["remote"] == "" {
		t.Fatalf("audit: %+v", audit.Items)
	}
	admin.want(200, "GET", "/api/v1/audit?q=desktop.assign", nil, &audit)
	if len(audit.Items) < 3 {
		t.Fatalf("assignments audited %d times, want 3+", len(audit.Items))
	}

	// Hosts and the rest answer.
	var hosts list
	admin.want(200, "GET", "/api/v1/hosts", nil, &hosts)
	if len(hosts.Items) != 1 || hosts.Items[0]["state"] != "up" {
		t.Fatalf("hosts: %+v", hosts.Items)
	}
	if anon.call("GET", "/version", nil, nil) != 200 || anon.call("GET", "/healthz", nil, nil) != 200 || anon.call("GET", "/readyz", nil, nil) != 200 {
		t.Fatal("version/healthz/readyz")
	}
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(m), "lobby_assignments_total 3") {
		t.Fatalf("metrics lack the assignment count:\n%s", m)
	}

	// Logout revokes the token.
	b.want(204, "POST", "/api/v1/logout", nil, nil)
	b.want(401, "GET", "/api/v1/me", nil, nil)
}

func TestAPIBadInput(t *testing.T) {
	t.Parallel()
	_, base := node(t, "sqlite", 0)
	admin := login(t, base, "admin", adminPW)
	tests := []struct {
		name, method, path string
		body               any
		status             int
		msg                string
	}{
		{"malformed json", "POST", "/api/v1/pools", `{"name": "x",`, 400, "not valid JSON"},
		{"unknown field", "POST", "/api/v1/pools", `{"name":"x","max_size":1,"colour":"red"}`, 400, `unknown field "colour"`},
		{"wrong type", "POST", "/api/v1/pools", `{"name":"x","max_size":"big"}`, 400, `field "max_size" must be a number`},
		{"huge body", "POST", "/api/v1/pools", `{"name":"` + strings.Repeat("x", 2<<20) + `"}`, 413, "larger than"},
		{"bad name", "POST", "/api/v1/pools", `{"name":"Bad Name","max_size":1}`, 400, "pool name"},
		{"min over max", "POST", "/api/v1/pools", `{"name":"x","min_size":3,"max_size":1}`, 400, "must not exceed"},
		{"unknown pool", "GET", "/api/v1/pools/nope", nil, 404, "does not exist"},
		{"unknown desktop", "GET", "/api/v1/desktops/dsk_nope", nil, 404, "does not exist"},
		{"unknown job", "GET", "/api/v1/jobs/123456", nil, 404, "does not exist"},
		{"bad action", "POST", "/api/v1/desktops/dsk_nope/actions", `{"action":"explode"}`, 404, "does not exist"},
		{"bad job action", "POST", "/api/v1/jobs/1/actions", `{"action":"explode"}`, 400, "use retry or cancel"},
		{"unknown job", "POST", "/api/v1/jobs/999999/actions", `{"action":"retry"}`, 404, "does not exist"},
		{"assign to nobody", "POST", "/api/v1/desktops/dsk_nope/actions", `{"action":"assign","user":"nobody"}`, 404, "does not exist"},
		{"bad release time", "POST", "/api/v1/policies", `{"name":"p","pools":[],"users":["*"]}`, 400, "offers no pools"},
		{"unknown route", "GET", "/api/v1/frobs", nil, 404, "no API route"},
		{"bad limit", "GET", "/api/v1/users?limit=-1", nil, 400, "limit"},
		{"connect without pool", "POST", "/api/v1/connect", `{}`, 400, "pool is required"},
		{"release unknown", "POST", "/api/v1/release", `{"desktop":"dsk_nope"}`, 404, "does not exist"},
		{"delete last admin", "PUT", "/api/v1/users/admin", `{"role":"user"}`, 409, "last administrator"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e apiError
			got := admin.call(tt.method, tt.path, tt.body, &e)
			if got != tt.status || !strings.Contains(e.Error.Message, tt.msg) {
				t.Fatalf("got %d %+v, want %d with %q", got, e, tt.status, tt.msg)
			}
		})
	}
	// Nothing partial was written by the refused creates.
	var pools list
	admin.want(200, "GET", "/api/v1/pools", nil, &pools)
	if len(pools.Items) != 0 {
		t.Fatalf("refused requests left pools behind: %+v", pools.Items)
	}
}

func TestConcurrentConnectOverHTTP(t *testing.T) {
	t.Parallel()
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			_, base := node(t, dialect, 5)
			admin := login(t, base, "admin", adminPW)
			eventually(t, "5 running demo desktops", func() bool {
				var p struct{ Counts struct{ Free int } }
				admin.want(200, "GET", "/api/v1/pools/demo", nil, &p)
				return p.Counts.Free == 5
			})
			const people = 12
			clients := make([]*apiClient, people)
			for i := range clients {
				name := fmt.Sprintf("user%02d", i)
				admin.want(201, "POST", "/api/v1/users", map[string]any{"username": name, "password": name + " password"}, nil)
				clients[i] = login(t, base, name, name+" password")
			}
			var mu sync.Mutex
			owner := map[string]int{}
			refused := 0
			var wg sync.WaitGroup
			for i, c := range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					var res struct{ Desktop struct{ ID string } }
					var e apiError
					code := c.call("POST", "/api/v1/connect", map[string]string{"pool": "demo"}, &res)
					mu.Lock()
					defer mu.Unlock()
					switch code {
					case 200:
						if prev, dup := owner[res.Desktop.ID]; dup {
							t.Errorf("desktop %s given to user %d and %d", res.Desktop.ID, prev, i)
						}
						owner[res.Desktop.ID] = i
					case 409:
						refused++
					default:
						t.Errorf("connect: %d %+v", code, e)
					}
				}()
			}
			wg.Wait()
			if len(owner) != 5 || refused != people-5 {
				t.Fatalf("%d connected, %d refused; want 5 and %d", len(owner), refused, people-5)
			}
		})
	}
}

func TestDataDirNotWritable(t *testing.T) {
	t.Parallel()
	if os.Geteuid() == 0 {
		// Root writes anywhere; a file in the way fails for everyone.
		dir := t.TempDir() + "/file"
		if err := os.WriteFile(dir, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := New(context.Background(), Config{DataDir: dir + "/sub", PlainHTTP: true, Listen: "127.0.0.1:0"})
		if err == nil || !strings.Contains(err.Error(), "--data") {
			t.Fatalf("got %v, want an error naming --data", err)
		}
		return
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	_, err := New(context.Background(), Config{DataDir: dir, PlainHTTP: true, Listen: "127.0.0.1:0"})
	if err == nil || !strings.Contains(err.Error(), "not writable") {
		t.Fatalf("got %v", err)
	}
}

// TestPasswordHashSetting checks that --password-hash sets the argon2id
// settings of new hashes (the first administrator's here), and that the
// default is auth.DefaultParams.
func TestPasswordHashSetting(t *testing.T) {
	t.Parallel()
	for _, p := range []auth.Params{{}, {Memory: 9216, Time: 4, Threads: 1}} {
		cfg := Config{
			Listen: "127.0.0.1:0", DataDir: t.TempDir(), PlainHTTP: true, AdminPassword: adminPW, HashSlots: 2,
			PasswordHash: p, Logger: testLogger(t),
		}
		s, url := start(t, cfg)
		// Signing in waits for the node to serve, and checks the hash.
		resp, err := http.Post(url+"/api/v1/login", "application/json", strings.NewReader(`{"username":"admin","password":"`+adminPW+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("sign in with PasswordHash %v: %s", p, resp.Status)
		}
		want := p
		if want == (auth.Params{}) {
			want = auth.DefaultParams
		}
		_, hash, err := s.Store.GetUserByName(context.Background(), "admin")
		if err != nil {
			t.Fatal(err)
		}
		if prefix := "$argon2id$v=19$" + want.String() + "$"; !strings.HasPrefix(hash, prefix) {
			t.Errorf("PasswordHash %v: the admin's hash %.40s... does not start with %s", p, hash, prefix)
		}
	}
}
