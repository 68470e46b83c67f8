package web_test

import (
	"context"
	"errors"
	"html"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"lobby/internal/agent"
	"lobby/internal/linkproto"
	"lobby/internal/lobby"
	"lobby/internal/provider/memory"
)

// TestAdminLinksAndTokens drives join tokens, the link list and host
// revocation on a real node, with in-process agents that link to it over
// its normal listener.
func TestAdminLinksAndTokens(t *testing.T) {
	n := startNode(t)
	for _, tt := range []struct {
		name string
		run  func(*testing.T, *node)
		own  bool // on a node of its own: it links a host, which the others' empty Links page must not show
	}{
		{"token shown once", testTokenShownOnce, false}, {"token forms", testTokenForms, false}, {"token access", testTokenAccess, false},
		{"token revoke", testTokenRevoke, false}, {"link, revoke, remove", testLinkRevokeRemove, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tt.own {
				tt.run(t, startNode(t))
				return
			}
			tt.run(t, n)
		})
	}
}

var tokenField = regexp.MustCompile(`id="join-token" type="text" value="([^"]+)"`)

// createToken fills in the token form and returns the token the page
// shows and the page.
func createToken(t *testing.T, b *browser, form url.Values) (string, string) {
	t.Helper()
	st, page := b.post("/admin/tokens", form)
	b.want(http.StatusCreated, page, st, "shown only this once")
	m := tokenField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no token on the page:\n%s", excerpt(page))
	}
	return html.UnescapeString(m[1]), page
}

// newTestAgent is a host agent on the in-memory provider with hubs as
// its upstream list; it has not joined.
func newTestAgent(t *testing.T, name string, hubs ...linkproto.HubSetting) *agent.Agent {
	t.Helper()
	p, err := memory.New(memory.Config{Width: 64, Height: 48})
	if err != nil {
		t.Fatal(err)
	}
	a, err := agent.New(agent.Config{Name: name, DataDir: t.TempDir(), Hubs: hubs, Provider: p, Release: "agent-test",
		Logger: slog.New(slog.DiscardHandler), CheckEvery: 50 * time.Millisecond, BackoffMin: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// runAgent runs a joined agent until the test ends and returns Run's
// result.
func runAgent(t *testing.T, a *agent.Agent) <-chan error {
	ctx, cancel := context.WithCancel(context.Background())
	done, stopped := make(chan error, 1), make(chan struct{})
	go func() { done <- a.Run(ctx); close(stopped) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-stopped:
		case <-time.After(10 * time.Second):
			t.Error("the agent did not stop")
		}
	})
	return done
}

func testTokenShownOnce(t *testing.T, n *node) {
	b := n.adminAs(t)
	st, page := b.get("/admin/tokens")
	b.want(200, page, st, "New join token", `name="expires_in"`, `value="24h"`, `<option value="7d">`)
	token, page := createToken(t, b, url.Values{"expires_in": {"2h"}, "uses": {"2"}, "note": {"rack 7"}})
	jt, err := linkproto.ParseJoinToken(token)
	if err != nil {
		t.Fatalf("the page's token %q: %v", token, err)
	}
	cmd := "lobby agent --join " + token + " --hub " + n.base + " --data /var/lib/lobby-agent"
	b.want(201, page, 201, html.EscapeString(cmd), `data-token="`+jt.ID+`"`)
	if strings.Count(page, jt.Secret) != 2 {
		t.Errorf("the create page shows the secret %d times, want twice (the token and the command)", strings.Count(page, jt.Secret))
	}
	stored, err := n.srv.Store.GetJoinToken(context.Background(), jt.ID)
	if err != nil {
		t.Fatal(err)
	}
	// After that, no page holds the token, its secret or its hash.
	for _, p := range []string{"/admin/tokens", "/admin/tokens?sort=note", "/admin/audit", "/admin"} {
		st, page := b.get(p)
		b.want(200, page, st)
		for what, s := range map[string]string{"token": token, "secret": jt.Secret, "hash": stored.Hash} {
			if strings.Contains(page, s) {
				t.Errorf("%s shows the token's %s", p, what)
			}
		}
	}
	_, page = b.get("/admin/tokens")
	row := tokenRow(t, page, jt.ID)
	for _, want := range []string{"rack 7", "admin", "0 / 2", "in 1h", `badge token-active">active<`, "Revoke", "data-confirm="} {
		if !strings.Contains(row, want) {
			t.Errorf("the token's row lacks %q:\n%s", want, row)
		}
	}
}

// tokenRow is the list's row of token id.
func tokenRow(t *testing.T, page, id string) string {
	t.Helper()
	i := strings.Index(page, `<tr data-token="`+id+`"`)
	if i < 0 {
		t.Fatalf("token %s is not listed:\n%s", id, excerpt(page))
	}
	row := page[i:]
	return row[:strings.Index(row, "</tr>")]
}

func testTokenForms(t *testing.T, n *node) {
	bad := []struct {
		name  string
		form  url.Values
		field string
		msg   string
	}{
		{"expiry not a duration", url.Values{"expires_in": {"soon"}, "uses": {"1"}}, "expires_in", "not a duration"},
		{"expiry too long", url.Values{"expires_in": {"90d"}, "uses": {"1"}}, "expires_in", "out of range"},
		{"expiry too short", url.Values{"expires_in": {"10s"}, "uses": {"1"}}, "expires_in", "out of range"},
		{"uses not a number", url.Values{"expires_in": {"1h"}, "uses": {"many"}}, "uses", "whole number"},
		{"no uses", url.Values{"expires_in": {"1h"}, "uses": {"0"}}, "uses", "out of range"},
		{"too many uses", url.Values{"expires_in": {"1h"}, "uses": {"20000"}}, "uses", "out of range"},
		{"note of two lines", url.Values{"expires_in": {"1h"}, "uses": {"1"}, "note": {"a\nb"}}, "note", "one line"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := n.adminAs(t)
			st, page := b.post("/admin/tokens", tt.form)
			b.want(400, page, st, "New join token")
			if got := fieldError(page, tt.field); !strings.Contains(got, tt.msg) {
				t.Errorf("error next to %s = %q, want %q", tt.field, got, tt.msg)
			}
			for _, k := range []string{"expires_in", "uses"} {
				if !kept(page, k, tt.form.Get(k)) {
					t.Errorf("field %s lost what was typed (%q)", k, tt.form.Get(k))
				}
			}
			if strings.Contains(page, `id="join-token"`) {
				t.Error("a refused form shows a token")
			}
		})
	}
}

func testTokenAccess(t *testing.T, n *node) {
	joe := n.addUser(t, "tok-joe", lobby.RoleUser, "")
	op := n.addUser(t, "tok-olga", lobby.RoleOperator, "")
	for _, b := range []*browser{joe, op} {
		b.t = t
		st, page := b.get("/admin/tokens")
		b.want(403, page, st, "Not allowed")
		st, page = b.post("/admin/tokens", url.Values{"expires_in": {"1h"}, "uses": {"1"}})
		b.want(403, page, st, "Not allowed")
		st, page = b.post("/admin/tokens/jtk_x/revoke", nil)
		b.want(403, page, st, "Not allowed")
		st, page = b.post("/admin/hosts/x/revoke", nil)
		b.want(403, page, st, "Not allowed")
		st, page = b.post("/admin/hosts/x/remove", nil)
		b.want(403, page, st, "Not allowed")
	}
	st, page := joe.get("/admin/links")
	joe.want(403, page, st, "Not allowed")
	// An operator reads the links but is offered no tokens.
	st, page = op.get("/admin/links")
	op.want(200, page, st, "Linked hosts", "lobby admin token create")
	if strings.Contains(page, `href="/admin/tokens"`) {
		t.Error("an operator's pages link the join tokens")
	}
	_, page = n.adminAs(t).get("/admin/links")
	if !strings.Contains(page, `href="/admin/tokens"`) {
		t.Error("an administrator's pages do not link the join tokens")
	}
}

func testTokenRevoke(t *testing.T, n *node) {
	b := n.adminAs(t)
	token, _ := createToken(t, b, url.Values{"expires_in": {"1h"}, "uses": {"1"}, "note": {"to revoke"}})
	jt, _ := linkproto.ParseJoinToken(token)
	st, page := b.post("/admin/tokens/"+jt.ID+"/revoke", nil)
	b.want(200, page, st, "Join token "+jt.ID+" revoked")
	row := tokenRow(t, page, jt.ID)
	if !strings.Contains(row, `badge token-revoked">revoked<`) || strings.Contains(row, "Revoke") {
		t.Errorf("after revoking, the row is:\n%s", row)
	}
	st, page = b.post("/admin/tokens/jtk_nosuch/revoke", nil)
	b.want(404, page, st, "Not found")

	// An agent that tries it is refused, and the link list says why.
	a := newTestAgent(t, "host-late", linkproto.HubSetting{URL: n.base, AutoConnect: true})
	var refused *agent.RefusedError
	if err := a.Join(context.Background(), token); !errors.As(err, &refused) {
		t.Fatalf("join with a revoked token: %v, want a refusal", err)
	}
	st, page = b.get("/admin/links")
	b.want(200, page, st, `data-refused="host-late"`, "was revoked", `badge refused">refused<`)
}

func testLinkRevokeRemove(t *testing.T, n *node) {
	ctx := context.Background()
	b := n.adminAs(t)
	token, _ := createToken(t, b, url.Values{"expires_in": {"1h"}, "uses": {"1"}})
	a := newTestAgent(t, "host-w",
		linkproto.HubSetting{URL: n.base, Ping: linkproto.Duration(time.Second), AutoConnect: true},
		linkproto.HubSetting{URL: "https://127.0.0.1:1", NameMask: "hub2.*.example.com", Ping: linkproto.Duration(3 * time.Second), SecureOnly: true})
	if err := a.Join(ctx, token); err != nil {
		t.Fatal(err)
	}
	done := runAgent(t, a)
	hostPath := "/admin/hosts/" + a.HostID()
	var page string
	waitFor(t, "host-w on the links page", func() bool {
		_, page = b.get("/admin/links/table")
		return strings.Contains(page, `data-link="host-w"`)
	})
	for _, want := range []string{
		`hx-trigger="every 5s"`, `href="` + hostPath + `"`, `badge up">up<`, " ms</td>", "agent-test",
		"<code>" + n.base + "</code>", "<code>https://127.0.0.1:1</code>", "<code>hub2.*.example.com</code>", "<td>1s</td>", "<td>3s</td>",
		`<span class="yes">on</span>`, `<span class="no">off</span>`, `<span class="yes">yes</span>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the links table lacks %q:\n%s", want, page)
		}
	}

	waitFor(t, "host-w's metrics", func() bool {
		h, err := n.srv.Store.GetHost(ctx, a.HostID())
		return err == nil && h.MemTotal > 0
	})
	st, page := b.get("/admin/hosts?sort=cpu")
	b.want(200, page, st, `data-host="host-w"`, ">agent-test<", "iB / ", ">CPU<", "in-process")
	st, page = b.get(hostPath)
	b.want(200, page, st, "Host host-w", "agent-test", "up since", "cuts its link at once; it must join again", `aria-describedby="remove-why"`)

	// Remove is refused while the host is linked, with manage's reason.
	st, page = b.post(hostPath+"/remove", nil)
	b.want(409, page, st, "Host host-w", "is linked to this node")

	st, page = b.post(hostPath+"/revoke", nil)
	b.want(200, page, st, "Host host-w revoked", `badge revoked">revoked<`)
	select {
	case err := <-done:
		var refused *agent.RefusedError
		if !errors.As(err, &refused) {
			t.Errorf("the revoked agent stopped with %v, want a refusal", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the revoked agent kept running")
	}
	st, page = b.get("/admin/links")
	b.want(200, page, st, `data-refused="host-w"`)
	if strings.Contains(page, `data-link="host-w"`) {
		t.Error("the revoked host is still linked")
	}
	st, page = b.get("/admin")
	b.want(200, page, st, "Host host-w is revoked")
	waitFor(t, "host-w down", func() bool {
		h, err := n.srv.Store.GetHost(ctx, a.HostID())
		return err == nil && h.State == lobby.HostDown
	})
	st, page = b.get(hostPath)
	b.want(200, page, st, `action="`+hostPath+`/remove"`)
	if strings.Contains(page, `action="`+hostPath+`/revoke"`) {
		t.Error("a revoked host offers Revoke again")
	}
	st, page = b.post(hostPath+"/remove", nil)
	b.want(200, page, st, "Host host-w removed.")
	if strings.Contains(page, `data-host="host-w"`) {
		t.Error("the removed host is still listed")
	}
}
