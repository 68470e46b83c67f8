package web_test

import (
	"context"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"lobby/internal/lobby"
	"lobby/internal/provider/memory"
	"lobby/internal/server"
	"lobby/internal/store"
)

const adminPW = "correct horse battery"

// node is a running node with three demo desktops, signed in as admin.
type node struct {
	srv   *server.Server
	base  string
	admin *browser
}

// startNode starts a real node (SQLite, the work queue, a local agent on
// the in-memory provider) and waits for its demo desktops to run.
func startNode(t *testing.T) *node {
	t.Helper()
	prov, err := memory.New(memory.Config{Width: 64, Height: 48})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, server.Config{
		DataDir: t.TempDir(), PlainHTTP: true, Listen: "127.0.0.1:0", AdminPassword: adminPW,
		LocalAgent: true, Provider: prov, Demo: 3, HashSlots: 2, Version: "test",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
		srv.Close()
	})
	n := &node{srv: srv, base: srv.URL()}
	waitFor(t, "three running demo desktops", func() bool {
		ds, err := srv.Store.ListDesktops(ctx, store.DesktopFilter{Power: lobby.PowerRunning}, store.ListOptions{})
		return err == nil && len(ds) == 3
	})
	n.admin = n.signIn(t, "admin", adminPW)
	return n
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// browser is a person's browser: a cookie jar and the page's CSRF token.
type browser struct {
	t    *testing.T
	base string
	c    *http.Client
	csrf string
}

var csrfMeta = regexp.MustCompile(`<meta name="csrf-token" content="([^"]+)">`)

// do sends a request, follows redirects, and returns the final status and
// page; a page carrying a CSRF token updates the browser's.
func (b *browser) do(method, path string, form url.Values, header http.Header) (int, string) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.base+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	page := string(raw)
	if m := csrfMeta.FindStringSubmatch(page); m != nil {
		b.csrf = m[1]
	}
	return resp.StatusCode, page
}

func (b *browser) get(path string) (int, string) { b.t.Helper(); return b.do("GET", path, nil, nil) }

// post submits a form with the session's CSRF token.
func (b *browser) post(path string, form url.Values) (int, string) {
	b.t.Helper()
	f := url.Values{"csrf": {b.csrf}}
	for k, v := range form {
		f[k] = v
	}
	return b.do("POST", path, f, nil)
}

// want checks a page's status and that it holds every string of has.
func (b *browser) want(status int, page string, got int, has ...string) {
	b.t.Helper()
	if got != status {
		b.t.Fatalf("got status %d, want %d; page:\n%s", got, status, excerpt(page))
	}
	for _, s := range has {
		if !strings.Contains(page, s) {
			b.t.Fatalf("page lacks %q:\n%s", s, excerpt(page))
		}
	}
}

// excerpt is the page's main part, enough to see what went wrong.
func excerpt(page string) string {
	if i := strings.Index(page, `<main`); i >= 0 {
		page = page[i:]
	}
	if len(page) > 4000 {
		page = page[:4000] + "…"
	}
	return page
}

func (n *node) browser(t *testing.T) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, base: n.base, c: &http.Client{Jar: jar, Timeout: 30 * time.Second}}
}

// adminAs is the administrator's browser for test t.
func (n *node) adminAs(t *testing.T) *browser {
	b := *n.admin
	b.t = t
	return &b
}

// signIn signs in through the sign-in form.
func (n *node) signIn(t *testing.T, user, pw string) *browser {
	t.Helper()
	b := n.browser(t)
	st, page := b.do("POST", "/login", url.Values{"username": {user}, "password": {pw}}, nil)
	if st != http.StatusOK || b.csrf == "" {
		t.Fatalf("sign in as %s: status %d\n%s", user, st, excerpt(page))
	}
	return b
}

// addUser creates a user through the admin's form and signs them in.
func (n *node) addUser(t *testing.T, name string, role lobby.Role, groups string) *browser {
	t.Helper()
	pw := "password-of-" + name
	b := n.adminAs(t)
	st, page := b.post("/admin/users", url.Values{"username": {name}, "password": {pw}, "role": {string(role)}, "groups": {groups}})
	b.want(http.StatusOK, page, st, "User "+name+" created.")
	return n.signIn(t, name, pw)
}

// fieldError is the message shown next to a form field.
func fieldError(page, field string) string {
	m := regexp.MustCompile(`id="` + regexp.QuoteMeta(field) + `-error">([^<]*)<`).FindStringSubmatch(page)
	if m == nil {
		return ""
	}
	return html.UnescapeString(m[1])
}

// kept reports whether the page's input named field shows value.
func kept(page, field, value string) bool {
	re := regexp.MustCompile(`<input[^>]*name="` + regexp.QuoteMeta(field) + `"[^>]*value="` + regexp.QuoteMeta(html.EscapeString(value)) + `"`)
	return re.MatchString(page)
}

func (n *node) desktop(t *testing.T, name string) lobby.Desktop {
	t.Helper()
	for _, d := range n.desktops(t) {
		if d.Name == name {
			return d
		}
	}
	t.Fatalf("no desktop %s", name)
	return lobby.Desktop{}
}

func (n *node) desktops(t *testing.T) []lobby.Desktop {
	t.Helper()
	ds, err := n.srv.Store.ListDesktops(context.Background(), store.DesktopFilter{}, store.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

// TestAdminConsole drives the admin pages of one real node: first the
// lists as the node starts, then the changes, in parallel, each on
// things of its own.
func TestAdminConsole(t *testing.T) {
	n := startNode(t)
	t.Run("lists", func(t *testing.T) { testLists(t, n) })
	t.Run("changes", func(t *testing.T) {
		for _, tt := range []struct {
			name string
			run  func(*testing.T, *node)
		}{
			{"access", testAccess}, {"policies", testPolicyForms}, {"users", testUserForms},
			{"simulator", testSimulate}, {"desktops", testDesktopActions}, {"settings", testSettings},
			{"jobs", testJobs},
		} {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				tt.run(t, n)
			})
		}
	})
}

// testLists renders every admin page an administrator sees.
func testLists(t *testing.T, n *node) {
	ds := n.desktops(t)
	hosts, err := n.srv.Store.ListHosts(context.Background(), store.ListOptions{})
	if err != nil || len(hosts) != 1 || len(ds) != 3 {
		t.Fatalf("hosts %v, %v; %d desktops", hosts, err, len(ds))
	}
	h, d := hosts[0], ds[0]
	tests := []struct {
		path   string
		status int
		has    []string
	}{
		{"/admin/desktops", 200, []string{`data-desktop="demo-1"`, `data-desktop="demo-2"`, `data-desktop="demo-3"`, "3 desktops"}},
		{"/admin/desktops?pool=demo&assigned=no&power=running", 200, []string{"3 desktops"}},
		{"/admin/desktops?q=demo-2", 200, []string{`data-desktop="demo-2"`, "1 desktops"}},
		{"/admin/desktops?assigned=yes", 200, []string{"No desktops match these filters"}},
		{"/admin/desktops?pool=nosuch", 200, []string{"No desktops match"}},
		{"/admin/desktops?sort=name&dir=desc&per=1&page=2", 200, []string{`data-desktop="demo-2"`, "Page 2 of 3"}},
		{"/admin/desktops/" + d.ID, 200, []string{"Desktop " + d.Name, `value="restart"`, `data-confirm="Delete desktop`, `name="user"`}},
		{"/admin/hosts", 200, []string{`data-host="` + h.Name + `"`, `<a href="/admin/desktops?host=` + h.Name + `">3</a>`}},
		{"/admin/hosts/" + h.ID, 200, []string{"Host " + h.Name, "demo-1", "memory"}},
		{"/admin/policies", 200, []string{`data-policy="demo"`, "users *", "New policy"}},
		{"/admin/policies/demo", 200, []string{"Policy demo", `value="demo" checked`}},
		{"/admin/policies/new", 200, []string{"New policy", `name="pools" value="demo"`}},
		{"/admin/policies/simulate", 200, []string{`name="user"`}},
		{"/admin/users", 200, []string{`data-user="admin"`, "1 users"}},
		{"/admin/users?role=operator", 200, []string{"No users match"}},
		{"/admin/users/admin", 200, []string{"User admin", "Reset password"}},
		{"/admin/users/new", 200, []string{"New user", `name="password"`}},
		{"/admin/groups", 200, []string{"No user or policy names a group"}},
		{"/admin/roles", 200, []string{"manage_users", `href="/admin/users?role=admin">1 user<`}},
		{"/admin/jobs", 200, []string{"desktop.provision", `hx-trigger="every 5s"`, "completed"}},
		{"/admin/jobs?state=completed&kind=desktop.provision", 200, []string{"desktop.provision"}},
		{"/admin/jobs?state=discarded", 200, []string{"No jobs match"}},
		{"/admin/audit", 200, []string{"user.login", "web sign-in"}},
		{"/admin/audit?q=user.login", 200, []string{"user.login"}},
		{"/admin/audit?q=no-such-thing", 200, []string{"No events match"}},
		{"/admin/settings", 200, []string{"Site ID", "sqlite", "Portal banner", "Lobby test"}},
		{"/admin/desktops/dsk_nosuch", 404, []string{"Not found", `desktop &#34;dsk_nosuch&#34; does not exist`}},
		{"/admin/hosts/nosuch", 404, []string{"Not found"}},
		{"/admin/policies/nosuch", 404, []string{"Not found"}},
		{"/admin/users/nosuch", 404, []string{"Not found"}},
		{"/admin/jobs?state=bogus", 400, []string{"not valid"}},
		{"/admin/audit?before=x", 400, []string{"not an audit event"}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			t.Parallel()
			b := n.adminAs(t)
			st, page := b.get(tt.path)
			b.want(tt.status, page, st, tt.has...)
			if tt.status == 200 && !strings.Contains(page, "<th scope=") && strings.Contains(page, "<table") {
				t.Errorf("a table without <th scope>")
			}
		})
	}
}

// testAccess checks sign-in, roles and CSRF on pages and actions.
func testAccess(t *testing.T, n *node) {
	d := n.desktop(t, "demo-3")
	joe := n.addUser(t, "joe", lobby.RoleUser, "")
	op := n.addUser(t, "olga", lobby.RoleOperator, "")

	t.Run("signed out", func(t *testing.T) {
		t.Parallel()
		b := n.browser(t)
		st, page := b.get("/admin/desktops?pool=demo")
		b.want(200, page, st, `action="/login"`, `name="next" value="/admin/desktops?pool=demo"`)
	})
	t.Run("user role", func(t *testing.T) {
		t.Parallel()
		b := *joe
		b.t = t
		for _, p := range []string{"/admin", "/admin/desktops", "/admin/desktops/" + d.ID, "/admin/hosts", "/admin/policies", "/admin/policies/simulate?user=joe", "/admin/users", "/admin/groups", "/admin/roles", "/admin/jobs", "/admin/jobs/table", "/admin/audit", "/admin/settings"} {
			st, page := b.get(p)
			b.want(403, page, st, "Not allowed")
		}
		for _, p := range []string{"/admin/desktops/" + d.ID + "/action", "/admin/policies", "/admin/users", "/admin/settings", "/admin/jobs/1/retry"} {
			st, page := b.post(p, url.Values{"action": {"stop"}, "name": {"x"}})
			b.want(403, page, st, "Not allowed")
		}
		// The nav offers nothing of the console.
		_, page := b.get("/desktops")
		if strings.Contains(page, `href="/admin/desktops"`) {
			t.Error("a user's nav links the admin console")
		}
	})
	t.Run("operator role", func(t *testing.T) {
		t.Parallel()
		b := *op
		b.t = t
		st, page := b.get("/admin/desktops/" + d.ID)
		b.want(200, page, st, `value="stop"`, `action="/admin/desktops/`+d.ID+`/assign"`)
		if strings.Contains(page, "Unassign") {
			t.Error("a free desktop offers Unassign")
		}
		for _, p := range []string{"/admin/users", "/admin/settings", "/admin/policies/new", "/admin/roles"} {
			st, page := b.get(p)
			b.want(403, page, st, "Not allowed")
		}
		st, page = b.post("/admin/policies", url.Values{"name": {"op-made"}, "pools": {"demo"}, "users": {"*"}})
		b.want(403, page, st)
		st, page = b.get("/admin/policies/demo")
		b.want(200, page, st, "Policy demo")
		if strings.Contains(page, `action="/admin/policies/demo"`) {
			t.Error("an operator sees the policy form")
		}
	})
	t.Run("csrf", func(t *testing.T) {
		t.Parallel()
		b := n.adminAs(t)
		form := url.Values{"name": {"no-csrf"}, "pools": {"demo"}, "users": {"*"}}
		st, page := b.do("POST", "/admin/policies", form, nil)
		b.want(403, page, st, "out of date")
		form.Set("csrf", "forged")
		st, page = b.do("POST", "/admin/policies", form, nil)
		b.want(403, page, st)
		st, page = b.do("POST", "/admin/desktops/"+d.ID+"/action", url.Values{"action": {"stop"}}, nil)
		b.want(403, page, st)
		st, page = b.get("/admin/policies/no-csrf")
		b.want(404, page, st)
	})
	t.Run("unknown page", func(t *testing.T) {
		t.Parallel()
		b := n.adminAs(t)
		st, page := b.get("/admin/nothing-here")
		b.want(404, page, st, "Not found")
	})
}
