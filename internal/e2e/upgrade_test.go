package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"lobby/internal/pki"
	"lobby/internal/store/pgtest"
	"lobby/internal/store/sqlstore"
)

// release is a build of lobby: N is the tree's, N+1 and N+2 the test
// releases of internal/store/sqlstore/testrelease_tagged.go (one expand
// migration, then a contract one).
type release struct {
	name   string
	bin    string
	schema int64
}

// buildRelease builds lobby with build tags into dir.
func buildRelease(dir, tags string) (string, error) {
	bin := filepath.Join(dir, "lobby-"+tags)
	cmd := exec.Command(goTool(), "build", "-tags", tags, "-o", bin, "lobby/cmd/lobby")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build -tags %s: %v\n%s", tags, err, out)
	}
	return bin, nil
}

// upgradeCluster is nodes of several releases on one PostgreSQL database.
type upgradeCluster struct {
	pg, key string
	data    map[int]string // site ID → data directory, kept across upgrades
}

// start runs a node of release rel as site ID site and waits until it
// serves (its /readyz may say 503: in maintenance mode it still serves).
func (c *upgradeCluster) start(tb testing.TB, site int, rel release) *node {
	tb.Helper()
	if c.data[site] == "" {
		c.data[site] = tb.TempDir()
	}
	name := fmt.Sprintf("n%d", site)
	n := serveNode(tb, rel.bin, name, fmt.Sprintf("node %s (release %s)", name, rel.name), []string{"LOBBY_CLUSTER_KEY=" + c.key},
		"--listen", "127.0.0.1:0", "--data", c.data[site], "--name", name, "--postgres", c.pg, "--site-id", fmt.Sprint(site))
	n.admin = n.login(tb, "admin", adminPW)
	return n
}

// upgrade stops a node and starts release rel in its place.
func (c *upgradeCluster) upgrade(tb testing.TB, n *node, site int, rel release) *node {
	tb.Helper()
	if code := n.p.terminate(tb); code != 0 {
		tb.Fatalf("node %s exited %d on SIGTERM:\n%s", n.name, code, n.p.stderr.String())
	}
	return c.start(tb, site, rel)
}

// schema reads the database's schema version and floor.
func (c *upgradeCluster) schema(tb testing.TB) (version, floor int64) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.pg)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := conn.QueryRow(ctx, `SELECT (SELECT max(version_id) FROM `+sqlstore.VersionTable+`), (SELECT floor_version FROM schema_compat)`).Scan(&version, &floor); err != nil {
		tb.Fatal(err)
	}
	return version, floor
}

type apiNode struct {
	SiteID        int    `json:"site_id"`
	Mode          string `json:"mode"`
	SchemaVersion int64  `json:"schema_version"`
	Alive         bool   `json:"alive"`
}

// nodes lists the cluster's nodes by site ID, through n.
func (n *node) nodes(tb testing.TB) map[int]apiNode {
	tb.Helper()
	var l struct{ Items []apiNode }
	n.admin.want(http.StatusOK, "GET", "/api/v1/nodes", nil, &l)
	out := map[int]apiNode{}
	for _, x := range l.Items {
		out[x.SiteID] = x
	}
	return out
}

// wantNodes checks each site's schema version and mode, as n lists them.
func (n *node) wantNodes(tb testing.TB, want map[int]apiNode) {
	tb.Helper()
	eventually(tb, fmt.Sprintf("the nodes list of %s reads %+v", n.name, want), func() bool {
		got := n.nodes(tb)
		for site, w := range want {
			g := got[site]
			if !g.Alive || g.SchemaVersion != w.SchemaVersion || g.Mode != w.Mode {
				return false
			}
		}
		return true
	})
}

// watcher signs alice in and lists the nodes, on some nodes, over and
// over, recording every failure: the nodes that are not being upgraded
// must keep serving.
type watcher struct {
	stop   chan struct{}
	done   chan struct{}
	mu     sync.Mutex
	rounds int
	fails  []string
}

func watch(nodes []*node, adminToken string) *watcher {
	w := &watcher{stop: make(chan struct{}), done: make(chan struct{})}
	hc := &http.Client{Timeout: 15 * time.Second}
	do := func(method, u, token string, body string) (int, string, error) {
		req, _ := http.NewRequest(method, u, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil
	}
	go func() {
		defer close(w.done)
		for {
			for _, n := range nodes {
				for _, call := range []struct{ method, path, token, body string }{
					{"POST", "/api/v1/login", "", `{"username":"alice","password":"alice password 1"}`},
					{"GET", "/api/v1/nodes", adminToken, ""},
				} {
					code, body, err := do(call.method, n.url+call.path, call.token, call.body)
					if err != nil || code != http.StatusOK {
						w.mu.Lock()
						w.fails = append(w.fails, fmt.Sprintf("%s %s on %s: %d %s %v", call.method, call.path, n.name, code, body, err))
						w.mu.Unlock()
					}
				}
			}
			w.mu.Lock()
			w.rounds++
			w.mu.Unlock()
			select {
			case <-w.stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return w
}

// check stops the watcher after at least one more round, and fails the
// test on any failure it saw.
func (w *watcher) check(tb testing.TB, what string) {
	tb.Helper()
	w.mu.Lock()
	seen := w.rounds
	w.mu.Unlock()
	eventually(tb, "one more round of sign-ins", func() bool { w.mu.Lock(); defer w.mu.Unlock(); return w.rounds > seen })
	close(w.stop)
	<-w.done
	if len(w.fails) > 0 {
		tb.Fatalf("%s: the other nodes failed %d request(s) in %d rounds:\n%s", what, len(w.fails), w.rounds, strings.Join(w.fails, "\n"))
	}
	tb.Logf("%s: %d rounds of sign-ins and node lists on the other nodes, none failed", what, w.rounds)
}

// TestRollingUpgrade runs the README's upgrade procedure with real
// processes on one PostgreSQL: three nodes of release N; one upgraded to
// N+1 (it migrates; the others keep serving sign-ins and the node list
// throughout); a node of release N restarted then, which starts on the
// newer schema; a second node upgraded; release N+2, whose contract migration
// raises the floor, on the first node: the node still on N goes to
// maintenance mode (its own API error and message, a banner on its pages,
// 503 on /readyz, "maintenance" in the node list) while the N+1 node keeps
// serving; release N refuses to start on that database with its own
// message; the rest are upgraded and everyone serves again.
func TestRollingUpgrade(t *testing.T) {
	pg := pgtest.URL(t)
	dir, err := os.MkdirTemp("", "lobby-e2e-releases-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	type built struct {
		bin string
		err error
	}
	builds := map[string]chan built{"lobby_nextrelease": make(chan built, 1), "lobby_contractrelease": make(chan built, 1)}
	go func() { // one after the other: two cores
		for _, tags := range []string{"lobby_nextrelease", "lobby_contractrelease"} {
			bin, err := buildRelease(dir, tags)
			builds[tags] <- built{bin, err}
		}
	}()
	releaseOf := func(tags, name string, schema int64) release {
		b := <-builds[tags]
		if b.err != nil {
			t.Fatal(b.err)
		}
		return release{name: name, bin: b.bin, schema: schema}
	}
	n := release{name: "N", bin: lobbyBin, schema: sqlstore.SchemaVersion}
	c := &upgradeCluster{pg: pg, key: pki.NewClusterKeyString(), data: map[int]string{}}

	// Release N on three nodes.
	nodes := map[int]*node{1: c.start(t, 1, n)}
	nodes[2], nodes[3] = c.start(t, 2, n), c.start(t, 3, n)
	nodes[1].admin.want(http.StatusCreated, "POST", "/api/v1/users", map[string]any{"username": "alice", "password": "alice password 1", "role": "user"}, nil)
	normal := func(schema int64) apiNode { return apiNode{Mode: "normal", SchemaVersion: schema} }
	nodes[1].wantNodes(t, map[int]apiNode{1: normal(n.schema), 2: normal(n.schema), 3: normal(n.schema)})
	token := nodes[1].admin.token

	// N+1 on node 1: it migrates (expand); 2 and 3 keep serving.
	next := releaseOf("lobby_nextrelease", "N+1", 9001)
	w := watch([]*node{nodes[2], nodes[3]}, token)
	nodes[1] = c.upgrade(t, nodes[1], 1, next)
	w.check(t, "node 1 upgraded to N+1")
	if v, f := c.schema(t); v != next.schema || f != 0 {
		t.Fatalf("after N+1's start: schema %d, floor %d; want %d, 0", v, f, next.schema)
	}
	nodes[2].wantNodes(t, map[int]apiNode{1: normal(next.schema), 2: normal(n.schema), 3: normal(n.schema)})
	for _, x := range nodes {
		x.login(t, "alice", "alice password 1")
	}

	// A node of release N restarted in the middle of the upgrade starts on
	// the newer schema, which it may serve.
	w = watch([]*node{nodes[1], nodes[2]}, token)
	nodes[3] = c.upgrade(t, nodes[3], 3, n)
	w.check(t, "node 3 restarted on release N")
	nodes[1].wantNodes(t, map[int]apiNode{1: normal(next.schema), 2: normal(n.schema), 3: normal(n.schema)})
	nodes[3].login(t, "alice", "alice password 1")

	// N+1 on node 2, while 1 and 3 serve.
	w = watch([]*node{nodes[1], nodes[3]}, token)
	nodes[2] = c.upgrade(t, nodes[2], 2, next)
	w.check(t, "node 2 upgraded to N+1")

	// N+2 (a contract migration) before node 3 was upgraded: the dry run
	// says so, then node 3 goes to maintenance mode.
	contract := releaseOf("lobby_contractrelease", "N+2", 9002)
	out, err := exec.Command(contract.bin, "admin", "db", "migrate", "--postgres", pg, "--dry-run").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "contract: only nodes that know schema 9001 or later keep running") ||
		!strings.Contains(string(out), "site 3 (n3, release ") || !strings.Contains(string(out), fmt.Sprintf("schema %d)", n.schema)) ||
		!strings.Contains(string(out), "go to maintenance mode") {
		t.Fatalf("admin db migrate --dry-run of N+2: %v\n%s", err, out)
	}
	w = watch([]*node{nodes[2]}, token)
	nodes[1] = c.upgrade(t, nodes[1], 1, contract)
	w.check(t, "node 1 upgraded to N+2 (node 2 on N+1)")
	if v, f := c.schema(t); v != contract.schema || f != next.schema {
		t.Fatalf("after N+2's start: schema %d, floor %d; want %d, %d", v, f, contract.schema, next.schema)
	}
	maint := apiNode{Mode: "maintenance", SchemaVersion: n.schema}
	nodes[2].wantNodes(t, map[int]apiNode{1: normal(contract.schema), 2: normal(next.schema), 3: maint})
	checkMaintenance(t, nodes[3], fmt.Sprintf("database schema %d needs Lobby nodes that know schema %d or later, and this node knows %d: upgrade this node", contract.schema, next.schema, n.schema))

	// Release N no longer starts on this database.
	if code := nodes[3].p.terminate(t); code != 0 {
		t.Fatalf("node 3 exited %d on SIGTERM", code)
	}
	old := startBin(t, lobbyBin, "node n3 (release N again)", []string{"LOBBY_CLUSTER_KEY=" + c.key},
		"server", "--plain-http", "--listen", "127.0.0.1:0", "--data", c.data[3], "--name", "n3", "--postgres", pg, "--site-id", "3")
	if code := old.wait(t); code == 0 || !strings.Contains(old.stderr.String(),
		fmt.Sprintf("needs a Lobby that knows schema %d or later; this binary knows %d: upgrade this node", next.schema, n.schema)) {
		t.Fatalf("release N on a contracted database: exit %d\n%s", code, old.stderr.String())
	}

	// Upgrade the rest: everyone serves again.
	nodes[3] = c.start(t, 3, contract)
	w = watch([]*node{nodes[1], nodes[3]}, token)
	nodes[2] = c.upgrade(t, nodes[2], 2, contract)
	w.check(t, "node 2 upgraded to N+2")
	nodes[3].wantNodes(t, map[int]apiNode{1: normal(contract.schema), 2: normal(contract.schema), 3: normal(contract.schema)})
	for _, x := range nodes {
		x.login(t, "alice", "alice password 1")
		if code, body := (&client{tb: t, base: x.url}).call("GET", "/readyz", nil); code != http.StatusOK {
			t.Errorf("/readyz of %s = %d %s", x.name, code, body)
		}
	}
}

// checkMaintenance checks what a node in maintenance mode shows: 503 on
// /readyz; a user's sign-in refused by the API (code maintenance, with
// why) and by the sign-in page; an administrator signed in, with the
// banner on the pages.
func checkMaintenance(t *testing.T, n *node, why string) {
	t.Helper()
	anon := &client{tb: t, base: n.url}
	eventually(t, n.name+" says it is in maintenance mode on /readyz", func() bool {
		code, body := anon.call("GET", "/readyz", nil)
		return code == http.StatusServiceUnavailable && strings.Contains(string(body), "maintenance mode: "+why)
	})
	code, raw := anon.call("POST", "/api/v1/login", map[string]string{"username": "alice", "password": "alice password 1"})
	var e struct {
		Error struct{ Code, Message string }
	}
	if err := json.Unmarshal(raw, &e); err != nil || code != http.StatusServiceUnavailable || e.Error.Code != "maintenance" ||
		!strings.Contains(e.Error.Message, why) || !strings.Contains(e.Error.Message, "only administrators can sign in here") {
		t.Fatalf("alice's sign-in on %s in maintenance mode: %d %s", n.name, code, raw)
	}
	n.login(t, "admin", adminPW)

	page := func(method, path string, form url.Values, cookie string) (int, string, string) {
		req, _ := http.NewRequest(method, n.url+path, strings.NewReader(form.Encode()))
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		hc := &http.Client{Timeout: 15 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		for _, c := range resp.Cookies() {
			if c.Name == "lobby_session" && c.Value != "" {
				cookie = c.Name + "=" + c.Value
			}
		}
		return resp.StatusCode, string(b), cookie
	}
	banner := "This node is in maintenance mode: " + why
	if code, html, _ := page("GET", "/login", nil, ""); code != http.StatusOK || !strings.Contains(html, banner) {
		t.Errorf("sign-in page of %s = %d, without the banner %q:\n%s", n.name, code, banner, html)
	}
	if code, html, _ := page("POST", "/login", url.Values{"username": {"alice"}, "password": {"alice password 1"}}, ""); code != http.StatusServiceUnavailable || !strings.Contains(html, "only administrators can sign in here") {
		t.Errorf("alice's web sign-in on %s = %d:\n%s", n.name, code, html)
	}
	code, _, cookie := page("POST", "/login", url.Values{"username": {"admin"}, "password": {adminPW}}, "")
	if code != http.StatusSeeOther || cookie == "" {
		t.Fatalf("administrator's web sign-in on %s = %d", n.name, code)
	}
	if code, html, _ := page("GET", "/admin", nil, cookie); code != http.StatusOK || !strings.Contains(html, banner) {
		t.Errorf("status page of %s = %d, without the banner:\n%s", n.name, code, html)
	}
}
