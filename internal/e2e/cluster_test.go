//go:build cluster

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"lobby/internal/pki"
	"lobby/internal/store/pgtest"
)

// TestCluster runs three `lobby server` processes on one PostgreSQL behind
// HAProxy (a generated configuration that checks /readyz), and two host
// agents with real desktops. Users sign in, connect, view their consoles
// and release, through the balancer (any node relays a console to the
// node holding its host's link), while the node that leads, holds a
// host's link and runs jobs is killed: no request fails beyond one retry
// of the client, no desktop is held by two people at once, and the dead
// node's jobs complete on another node, each command run once by its
// host. Run it with `make test-cluster` (build tag cluster).
func TestCluster(t *testing.T) {
	requireDesktops(t)
	haproxy := requireHAProxy(t)
	dbURL, key := pgtest.URL(t), pki.NewClusterKeyString()
	var nodes []*node
	for site := 1; site <= 3; site++ { // site 1 starts first, so it leads
		nodes = append(nodes, startClusterNode(t, site, dbURL, key))
	}
	lb := startHAProxy(t, haproxy, nodes)
	admin := (&node{url: lb}).login(t, "admin", adminPW)

	// host-a links to node 1 first, host-b to node 2; each lists every
	// node, so that it moves on when its node dies.
	tok := nodes[0].token(t, 2, "1h")
	agents := map[string]*process{
		"host-a": startAgent(t, "host-a", agentDir(t), tok.Token, nodes[0].url, nodes[1].url, nodes[2].url),
		"host-b": startAgent(t, "host-b", agentDir(t), tok.Token, nodes[1].url, nodes[2].url, nodes[0].url),
	}
	eventually(t, "both hosts are up", func() bool {
		hs := nodes[0].hosts(t)
		return hs["host-a"].State == "up" && hs["host-b"].State == "up"
	})
	const desktops, users = 4, 6
	admin.want(http.StatusCreated, "POST", "/api/v1/pools", map[string]any{"name": "cl", "min_size": desktops, "max_size": desktops, "min_free": desktops}, nil)
	// Two desktops no policy offers: the dead node's jobs restart them.
	admin.want(http.StatusCreated, "POST", "/api/v1/pools", map[string]any{"name": "spare", "min_size": 2, "max_size": 2, "min_free": 2}, nil)
	admin.want(http.StatusCreated, "POST", "/api/v1/policies", map[string]any{"name": "cl", "pools": []string{"cl"}, "groups": []string{"cl"},
		"release": map[string]any{"on_logoff": true}, "power_on_release": "keep"}, nil)
	for i := range users {
		admin.want(http.StatusCreated, "POST", "/api/v1/users", map[string]any{"username": fmt.Sprintf("u%d", i), "password": "user password",
			"groups": []string{"cl"}, "role": "user"}, nil)
	}
	eventually(t, "the pools' desktops run", func() bool {
		running := 0
		for _, d := range (&node{admin: admin}).desktops(t, "") {
			if d.Power == "running" {
				running++
			}
		}
		return running == desktops+2
	})

	l := &load{t: t, lb: lb, admin: admin, held: map[string]string{}}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := range users {
		wg.Add(1)
		go func() { defer wg.Done(); l.user(ctx, fmt.Sprintf("u%d", i)) }()
	}
	time.Sleep(8 * time.Second)
	jobs := l.killLeader(t, nodes[0])
	time.Sleep(15 * time.Second)
	cancel()
	wg.Wait()

	t.Logf("load: %d sign-ins, %d connects (%d found the pool full), %d consoles, %d releases; %d requests retried once",
		l.logins.Load(), l.connects.Load(), l.full.Load(), l.consoles.Load(), l.releases.Load(), l.retried.Load())
	if l.connects.Load() == 0 || l.releases.Load() == 0 {
		t.Fatal("the load did nothing")
	}
	for _, f := range l.failures() {
		t.Error(f)
	}
	l.jobsCompletedElsewhere(t, jobs)
	var discarded struct{ Items []map[string]any }
	admin.want(http.StatusOK, "GET", "/api/v1/jobs?state=discarded", nil, &discarded)
	if len(discarded.Items) > 0 {
		t.Errorf("jobs were given up: %+v", discarded.Items)
	}
	for name, a := range agents {
		ranOnce(t, name, a.stderr.String())
	}
}

func requireHAProxy(tb testing.TB) string {
	tb.Helper()
	for _, p := range []string{"haproxy", "/usr/sbin/haproxy"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	msg := "haproxy is missing: run `make test-cluster`, which installs it"
	if os.Getenv("CI") == "true" {
		tb.Fatal(msg)
	}
	tb.Skip(msg)
	return ""
}

// startClusterNode starts the node of a site on the shared database.
func startClusterNode(tb testing.TB, site int, dbURL, key string) *node {
	tb.Helper()
	return startNodeWith(tb, fmt.Sprintf("node-%d", site), []string{"LOBBY_CLUSTER_KEY=" + key}, "--postgres", dbURL, "--site-id", strconv.Itoa(site))
}

// startHAProxy runs HAProxy in front of the nodes, checking /readyz, and
// returns its URL.
func startHAProxy(tb testing.TB, bin string, nodes []*node) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	var servers strings.Builder
	for _, n := range nodes {
		fmt.Fprintf(&servers, "    server %s %s check\n", n.name, strings.TrimPrefix(n.url, "http://"))
	}
	cfg := fmt.Sprintf(`global
    maxconn 2000
defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout tunnel 1h
    option redispatch
    retries 2
frontend lobby
    bind %s
    default_backend nodes
backend nodes
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    default-server inter 300ms fall 2 rise 2
%s`, addr, servers.String())
	dir := tb.TempDir()
	path := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		tb.Fatal(err)
	}
	p := &process{name: "haproxy", done: make(chan struct{})}
	p.cmd = exec.Command(bin, "-db", "-f", path)
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		tb.Fatalf("start haproxy: %v", err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	tb.Cleanup(func() {
		p.stop(tb)
		if tb.Failed() {
			tb.Logf("--- haproxy:\n%s%s\n--- its configuration:\n%s", p.stdout.String(), p.stderr.String(), cfg)
		}
	})
	url := "http://" + addr
	anon := &client{tb: tb, base: url}
	eventually(tb, "HAProxy serves /readyz", func() bool {
		if p.exited() {
			tb.Fatalf("haproxy exited: %v\n%s", p.err, p.stderr.String())
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false
		}
		c.Close()
		code, _ := anon.call("GET", "/readyz", nil)
		return code == http.StatusOK
	})
	return url
}

// load is the users' traffic through the balancer and what it saw.
type load struct {
	t     *testing.T
	lb    string
	admin *client

	mu   sync.Mutex
	held map[string]string // desktop ID → the user holding it
	errs []string

	logins, connects, full, consoles, releases, retried atomic.Int64
}

func (l *load) fail(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.errs = append(l.errs, fmt.Sprintf(format, args...))
}

func (l *load) failures() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.errs
}

var loadHTTP = &http.Client{Timeout: 30 * time.Second}

// call sends one request through the balancer and retries it once, as a
// client would, when the network or the balancer fails it (5xx). ok
// says whether a retry's answer may count as done after a first attempt
// that may have gone through (a release answered "not held").
func (l *load) call(token, method, path string, body any, out any, ok ...int) (int, error) {
	var code int
	var err error
	for attempt := 0; attempt < 2; attempt++ {
		if attempt > 0 {
			l.retried.Add(1)
			time.Sleep(200 * time.Millisecond)
		}
		var raw []byte
		code, raw, err = l.once(token, method, path, body)
		if err == nil && code < 500 {
			if attempt > 0 {
				for _, c := range ok {
					if code == c {
						return http.StatusOK, nil
					}
				}
			}
			if out != nil && code < 300 {
				err = json.Unmarshal(raw, out)
			}
			return code, err
		}
		if err == nil {
			err = fmt.Errorf("HTTP %d: %s", code, raw)
		}
	}
	return code, err
}

func (l *load) once(token, method, path string, body any) (int, []byte, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, l.lb+path, r)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := loadHTTP.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	return resp.StatusCode, raw, err
}

// user signs in, then connects, views the console and releases, again
// and again, signing in anew every few rounds, until ctx ends.
func (l *load) user(ctx context.Context, name string) {
	token := ""
	for round := 0; ctx.Err() == nil; round++ {
		if round%4 == 0 {
			var res struct{ Token string }
			if code, err := l.call("", "POST", "/api/v1/login", map[string]string{"username": name, "password": "user password"}, &res); err != nil || code != 200 {
				l.fail("%s: sign in failed twice: %d %v", name, code, err)
				return
			}
			token = res.Token
			l.logins.Add(1)
		}
		var c struct {
			Desktop apiDesktop
			VNCURL  string `json:"vnc_url"`
		}
		code, err := l.call(token, "POST", "/api/v1/connect", map[string]string{"pool": "cl"}, &c)
		switch {
		case err != nil:
			l.fail("%s: connect failed twice: %v", name, err)
			return
		case code == http.StatusConflict:
			l.full.Add(1)
			time.Sleep(100 * time.Millisecond)
			continue
		case code != http.StatusOK:
			l.fail("%s: connect answered %d", name, code)
			return
		}
		l.connects.Add(1)
		if !l.hold(name, c.Desktop.ID) {
			return
		}
		l.viewConsole(ctx, name, token, c.Desktop, c.VNCURL)
		l.unhold(c.Desktop.ID)
		// A retry whose first attempt went through finds the desktop no
		// longer the user's: a user is told 403 "not assigned to you"
		// whether it is free or already someone else's.
		if code, err := l.call(token, "POST", "/api/v1/release", map[string]string{"desktop": c.Desktop.ID}, nil, http.StatusForbidden, http.StatusNotFound, http.StatusConflict); err != nil || code != http.StatusOK {
			l.fail("%s: release of %s failed twice: %d %v", name, c.Desktop.Name, code, err)
			return
		}
		l.releases.Add(1)
	}
}

// hold records that user holds a desktop; a desktop held by someone else
// is a failure.
func (l *load) hold(user, desktop string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if other, ok := l.held[desktop]; ok && other != user {
		l.errs = append(l.errs, fmt.Sprintf("desktop %s handed to %s while %s holds it", desktop, user, other))
		return false
	}
	l.held[desktop] = user
	return true
}

func (l *load) unhold(desktop string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.held, desktop)
}

// viewConsole views a desktop's console through the balancer: whichever
// node serves it relays to the node holding the host's link. A failure
// (the host moving to another node as its hub died) gets one more try,
// with a new ticket (a ticket is good once): connect again answers the
// same desktop.
func (l *load) viewConsole(ctx context.Context, user, token string, d apiDesktop, vncURL string) {
	var err error
	for attempt := 0; attempt < 2; attempt++ {
		if attempt > 0 {
			l.retried.Add(1)
			time.Sleep(time.Second)
			var c struct {
				Desktop apiDesktop
				VNCURL  string `json:"vnc_url"`
			}
			if code, cerr := l.call(token, "POST", "/api/v1/connect", map[string]string{"pool": "cl"}, &c); cerr != nil || code != http.StatusOK || c.Desktop.ID != d.ID {
				l.fail("%s: connect again for a new ticket to %s: %d %v, desktop %s", user, d.Name, code, cerr, c.Desktop.Name)
				return
			}
			vncURL = c.VNCURL
		}
		vctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		_, err = viewConsole(vctx, l.lb, vncURL)
		cancel()
		if err == nil {
			l.consoles.Add(1)
			return
		}
	}
	if ctx.Err() == nil {
		l.fail("%s: console of %s failed twice: %v", user, d.Name, err)
	}
}

// killLeader restarts the spare desktops through node 1's API (jobs of
// site 1 when they are on host-a, linked to node 1; a restart stops and
// starts Xvnc, long enough to be caught) and kills node 1 with SIGKILL at
// once: it leads, holds host-a's link and owns those jobs. It returns
// them.
func (l *load) killLeader(t *testing.T, n *node) []string {
	t.Helper()
	var ids []string
	for _, d := range n.desktops(t, "?pool=spare") {
		var out struct {
			Job struct {
				ID   string `json:"id"`
				Site int    `json:"site"`
			}
		}
		n.admin.want(http.StatusAccepted, "POST", "/api/v1/desktops/"+d.ID+"/actions", map[string]string{"action": "restart"}, &out)
		if out.Job.Site == 1 {
			ids = append(ids, out.Job.ID)
		}
	}
	_ = syscall.Kill(-n.p.cmd.Process.Pid, syscall.SIGKILL)
	<-n.p.done
	t.Logf("killed node 1 with %d of its restart jobs enqueued", len(ids))
	return ids
}

// jobsCompletedElsewhere waits until the dead node's jobs completed, and
// checks that those it had not finished ran on another node.
func (l *load) jobsCompletedElsewhere(t *testing.T, ids []string) {
	t.Helper()
	moved := 0
	for _, id := range ids {
		var j struct {
			State     string `json:"state"`
			SiteID    int    `json:"site_id"`
			TakenOver []struct {
				From int `json:"from_site"`
			} `json:"taken_over"`
		}
		eventually(t, "job "+id+" of the dead node is finished", func() bool {
			l.admin.want(http.StatusOK, "GET", "/api/v1/jobs/"+id, nil, &j)
			return j.State == "completed" || j.State == "discarded" || j.State == "cancelled"
		})
		if j.State != "completed" {
			t.Errorf("job %s of the dead node ended %s", id, j.State)
		}
		if len(j.TakenOver) > 0 {
			moved++
			if j.SiteID == 1 || j.TakenOver[0].From != 1 {
				t.Errorf("job %s was taken over (%+v) but ran on site %d", id, j.TakenOver, j.SiteID)
			}
		}
	}
	t.Logf("%d of the dead node's %d jobs were taken over and completed elsewhere", moved, len(ids))
}

var commandLine = regexp.MustCompile(`msg=command id=(\S+) op=(\S+) desktop=\S+ ok=true`)

// ranOnce checks in an agent's log that it ran no command twice: a
// resent command is answered from memory, and logged as such.
func ranOnce(t *testing.T, name, log string) {
	t.Helper()
	seen := map[string]int{}
	for _, m := range commandLine.FindAllStringSubmatch(log, -1) {
		seen[m[1]+" "+m[2]]++
	}
	for k, n := range seen {
		if n > 1 {
			t.Errorf("agent %s ran command %s %d times", name, k, n)
		}
	}
}
