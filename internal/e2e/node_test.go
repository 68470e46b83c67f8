package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

const adminPW = "correct horse battery staple"

// node is a `lobby server` process on loopback, serving plain HTTP.
type node struct {
	name  string
	url   string // http://127.0.0.1:PORT
	p     *process
	admin *client
}

var urlLine = regexp.MustCompile(`URL:\s+(http://\S+)`)

// startNode starts a node named name (agents' name masks match it) with
// its own SQLite store and cluster CA, and signs in as its administrator.
func startNode(tb testing.TB, name string) *node {
	tb.Helper()
	return startNodeWith(tb, name, nil)
}

// startNodeWith starts a node as startNode does, with more environment
// and arguments (a shared PostgreSQL, a site ID).
func startNodeWith(tb testing.TB, name string, env []string, args ...string) *node {
	tb.Helper()
	n := launchNode(tb, name, env, append([]string{"--listen", "127.0.0.1:0", "--data", tb.TempDir(), "--name", name}, args...)...)
	n.admin = n.login(tb, "admin", adminPW)
	return n
}

// launchNode starts `lobby server --plain-http` with args, the first
// administrator's password and env, and waits until it prints its URL
// and is ready.
func launchNode(tb testing.TB, name string, env []string, args ...string) *node {
	tb.Helper()
	n := serveNode(tb, lobbyBin, name, "node "+name, env, args...)
	anon := &client{tb: tb, base: n.url}
	eventually(tb, "node "+name+" is ready", func() bool {
		code, _ := anon.call("GET", "/readyz", nil)
		return code == http.StatusOK
	})
	return n
}

// serveNode starts `lobby server --plain-http` of the build bin, called
// label in the test's log, with args, the first administrator's password
// and env, and waits until it prints its URL (not until it is ready: a
// node in maintenance mode serves, with 503 on /readyz).
func serveNode(tb testing.TB, bin, name, label string, env []string, args ...string) *node {
	tb.Helper()
	n := &node{name: name}
	n.p = startBin(tb, bin, label, append([]string{"LOBBY_ADMIN_PASSWORD=" + adminPW}, env...),
		append([]string{"server", "--plain-http"}, args...)...)
	eventually(tb, label+" prints its URL", func() bool {
		if n.p.exited() {
			tb.Fatalf("%s exited: %v\n%s", label, n.p.err, n.p.stderr.String())
		}
		if m := urlLine.FindStringSubmatch(n.p.stdout.String()); m != nil {
			n.url = m[1]
		}
		return n.url != ""
	})
	return n
}

// login signs in through the API.
func (n *node) login(tb testing.TB, user, pw string) *client {
	tb.Helper()
	c := &client{tb: tb, base: n.url}
	var res struct{ Token string }
	c.want(http.StatusOK, "POST", "/api/v1/login", map[string]string{"username": user, "password": pw}, &res)
	c.token = res.Token
	return c
}

// joinToken is a new join token and when it expires.
type joinToken struct {
	Token   string    `json:"token"`
	ID      string    `json:"id"`
	Expires time.Time `json:"expires"`
}

// token creates a join token through the API.
func (n *node) token(tb testing.TB, uses int, expiresIn string) joinToken {
	tb.Helper()
	var t joinToken
	n.admin.want(http.StatusCreated, "POST", "/api/v1/tokens", map[string]any{"uses": uses, "expires_in": expiresIn}, &t)
	if !strings.HasPrefix(t.Token, "LJ1.") {
		tb.Fatalf("POST /api/v1/tokens gave token %q, want LJ1.…", t.Token)
	}
	return t
}

// apiHost, apiLink and apiDesktop are the fields the tests read of the
// API's hosts, links and desktops.
type apiHost struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	State   string `json:"state"`
	Revoked bool   `json:"revoked"`
}

type apiLink struct {
	State     string    `json:"state"`
	Hub       string    `json:"hub"`
	Peer      string    `json:"peer"`
	HostID    string    `json:"host_id"`
	Address   string    `json:"address"`
	Since     time.Time `json:"since"`
	LastError string    `json:"last_error"`
}

type apiDesktop struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	HostID string `json:"host_id"`
	Power  string `json:"power"`
}

func (n *node) hosts(tb testing.TB) map[string]apiHost {
	tb.Helper()
	var l struct{ Items []apiHost }
	n.admin.want(http.StatusOK, "GET", "/api/v1/hosts", nil, &l)
	out := map[string]apiHost{}
	for _, h := range l.Items {
		out[h.Name] = h
	}
	return out
}

// links lists the node's links and refusals.
func (n *node) links(tb testing.TB) []apiLink {
	tb.Helper()
	var l struct{ Items []apiLink }
	n.admin.want(http.StatusOK, "GET", "/api/v1/links", nil, &l)
	return l.Items
}

// linkUp returns the host's link that is up, if any.
func (n *node) linkUp(tb testing.TB, host string) (apiLink, bool) {
	tb.Helper()
	for _, l := range n.links(tb) {
		if l.State == "up" && l.Peer == host {
			return l, true
		}
	}
	return apiLink{}, false
}

func (n *node) desktops(tb testing.TB, query string) []apiDesktop {
	tb.Helper()
	var l struct{ Items []apiDesktop }
	n.admin.want(http.StatusOK, "GET", "/api/v1/desktops"+query, nil, &l)
	return l.Items
}

// client calls a node's REST API, signed in or not.
type client struct {
	tb    testing.TB
	base  string
	token string
}

var httpClient = &http.Client{Timeout: 30 * time.Second}

// call sends a request with body as JSON and returns the status and the
// raw answer.
func (c *client) call(method, path string, body any) (int, []byte) {
	c.tb.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			c.tb.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, r)
	if err != nil {
		c.tb.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		c.tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		c.tb.Fatalf("%s %s: read the answer: %v", method, path, err)
	}
	return resp.StatusCode, raw
}

// want sends a request, fails unless it gets status, and decodes the
// answer into out (when not nil).
func (c *client) want(status int, method, path string, body, out any) {
	c.tb.Helper()
	got, raw := c.call(method, path, body)
	if got != status {
		c.tb.Fatalf("%s %s: got %d %s, want %d", method, path, got, raw, status)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			c.tb.Fatalf("%s %s: %v in %s", method, path, err, raw)
		}
	}
}
