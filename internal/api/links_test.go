package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"lobby/internal/api"
	"lobby/internal/auth"
	"lobby/internal/link"
	"lobby/internal/linkproto"
	"lobby/internal/lobby"
	"lobby/internal/manage"
	"lobby/internal/store"
	"lobby/internal/store/sqlite"
)

// fakeHub stands for link.Hub.
type fakeHub struct {
	mu    sync.Mutex
	links []link.Status
	cuts  []string
}

func (h *fakeHub) Links() []link.Status {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]link.Status{}, h.links...)
}

func (h *fakeHub) Cut(hostID, why string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.cuts = append(h.cuts, hostID)
	return true
}

var caFP = [32]byte{0xca, 0xfe, 31: 0x01}

// bundle is one test's API over a real SQLite store, with a signed-in
// client per role.
type bundle struct {
	t      *testing.T
	st     store.Store
	hub    *fakeHub
	base   string
	now    time.Time
	tokens map[lobby.Role]string
}

func setup(t *testing.T) *bundle {
	t.Helper()
	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "lobby.db"), logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	au, err := auth.New(ctx, st, auth.NewHasher(auth.Params{Memory: 64, Time: 1, Threads: 1}, 1), logger)
	if err != nil {
		t.Fatal(err)
	}
	b := &bundle{t: t, st: st, hub: &fakeHub{}, now: time.Now().UTC().Truncate(time.Second), tokens: map[lobby.Role]string{}}
	au.Now = func() time.Time { return b.now }
	for _, role := range []lobby.Role{lobby.RoleAdmin, lobby.RoleOperator, lobby.RoleUser} {
		u := &lobby.User{Username: string(role) + "1", Role: role, Groups: []string{}}
		if err := st.CreateUser(ctx, u, "x"); err != nil {
			t.Fatal(err)
		}
		secret, _, err := au.IssueToken(ctx, u.ID, "test", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		b.tokens[role] = secret
	}
	m := &manage.Service{Store: st, Hasher: au.Hasher, Now: au.Now, CAFingerprint: caFP, Hub: b.hub}
	srv := httptest.NewServer((&api.Server{Store: st, Auth: au, Manage: m, Version: "test", Logger: logger}).Handler())
	t.Cleanup(srv.Close)
	b.base = srv.URL
	return b
}

// call sends body (a string as is, anything else as JSON; nil for none)
// as role and returns the status and the raw answer.
func (b *bundle) call(role lobby.Role, method, path string, body any) (int, []byte) {
	b.t.Helper()
	var r io.Reader
	switch v := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(v)
	default:
		raw, _ := json.Marshal(v)
		r = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, b.base+path, r)
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+b.tokens[role])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw
}

// want checks the status and decodes the answer into out (when not nil).
func (b *bundle) want(status int, role lobby.Role, method, path string, body, out any) []byte {
	b.t.Helper()
	got, raw := b.call(role, method, path, body)
	if got != status {
		b.t.Fatalf("%s %s as %s: got %d %s, want %d", method, path, role, got, raw, status)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			b.t.Fatalf("%s %s: %v: %s", method, path, err, raw)
		}
	}
	return raw
}

type apiError struct {
	Error struct{ Code, Message, Field string }
}

// wantError checks an error answer's status and the field or words it
// names.
func (b *bundle) wantError(status int, role lobby.Role, method, path string, body any, field, words string) {
	b.t.Helper()
	var e apiError
	b.want(status, role, method, path, body, &e)
	if e.Error.Field != field || !strings.Contains(e.Error.Message, words) {
		b.t.Fatalf("%s %s %v: error %+v, want field %q and %q", method, path, body, e.Error, field, words)
	}
}

type createdToken struct {
	Token     string
	ID        string
	Expires   time.Time
	MaxUses   int `json:"max_uses"`
	Uses      int
	Note      string
	CreatedBy string `json:"created_by"`
}

func TestCreateToken(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var c createdToken
	b.want(201, lobby.RoleAdmin, "POST", "/api/v1/tokens", map[string]any{}, &c)
	jt, err := linkproto.ParseJoinToken(c.Token)
	if err != nil {
		t.Fatalf("token %q: %v", c.Token, err)
	}
	if jt.CAFingerprint != caFP || jt.ID != c.ID || c.MaxUses != 1 || !c.Expires.Equal(b.now.Add(24*time.Hour)) || c.CreatedBy != "admin1" {
		t.Fatalf("created %+v, parsed %+v", c, jt)
	}

	// No body at all takes the defaults; every field may be given.
	b.want(201, lobby.RoleAdmin, "POST", "/api/v1/tokens", nil, &c)
	b.want(201, lobby.RoleAdmin, "POST", "/api/v1/tokens", map[string]any{"expires_in": "2h", "uses": 3, "note": "rack 4"}, &c)
	if c.MaxUses != 3 || !c.Expires.Equal(b.now.Add(2*time.Hour)) || c.Note != "rack 4" {
		t.Fatalf("created %+v", c)
	}
	b.want(201, lobby.RoleAdmin, "POST", "/api/v1/tokens", map[string]any{"expires_in": "7d"}, &c)
	if !c.Expires.Equal(b.now.Add(7 * 24 * time.Hour)) {
		t.Fatalf("7d: expires %v", c.Expires)
	}

	b.wantError(403, lobby.RoleOperator, "POST", "/api/v1/tokens", map[string]any{}, "", "configure")
	b.wantError(403, lobby.RoleUser, "POST", "/api/v1/tokens", map[string]any{}, "", "configure")
	for _, tt := range []struct {
		body         any
		field, words string
	}{
		{map[string]any{"expires_in": "soon"}, "expires_in", `expires_in "soon" is not a duration`},
		{map[string]any{"expires_in": "30s"}, "expires_in", "out of range"},
		{map[string]any{"expires_in": "31d"}, "expires_in", "out of range"},
		{map[string]any{"expires_in": ""}, "expires_in", "empty"},
		{map[string]any{"expires_in": 3600}, "", `"expires_in"`},
		{map[string]any{"uses": 0}, "uses", "from 1 to 10000"},
		{map[string]any{"uses": 10001}, "uses", "from 1 to 10000"},
		{map[string]any{"uses": "many"}, "", `"uses"`},
		{map[string]any{"note": strings.Repeat("x", 201)}, "note", "keep it to 200"},
		{map[string]any{"secret": "mine"}, "", "unknown field"},
		{`{"uses": 1} {}`, "", "after the JSON object"},
	} {
		b.wantError(400, lobby.RoleAdmin, "POST", "/api/v1/tokens", tt.body, tt.field, tt.words)
	}
	b.wantError(413, lobby.RoleAdmin, "POST", "/api/v1/tokens", `{"note": "`+strings.Repeat("x", 2<<20)+`"}`, "", "larger than")
}

func TestListAndRevokeTokens(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var c createdToken
	b.want(201, lobby.RoleAdmin, "POST", "/api/v1/tokens", map[string]any{"note": "n"}, &c)
	jt, _ := linkproto.ParseJoinToken(c.Token)
	stored, err := b.st.GetJoinToken(context.Background(), c.ID)
	if err != nil {
		t.Fatal(err)
	}

	var l struct {
		Items []map[string]any
		Next  string
	}
	raw := b.want(200, lobby.RoleAdmin, "GET", "/api/v1/tokens", nil, &l)
	if strings.Contains(string(raw), jt.Secret) || strings.Contains(string(raw), stored.Hash) || strings.Contains(string(raw), "hash") {
		t.Fatalf("the list shows a secret or hash: %s", raw)
	}
	if len(l.Items) != 1 || l.Items[0]["id"] != c.ID || l.Items[0]["state"] != "active" || l.Items[0]["token"] != nil {
		t.Fatalf("list %s", raw)
	}
	b.want(403, lobby.RoleOperator, "GET", "/api/v1/tokens", nil, nil)

	b.want(403, lobby.RoleOperator, "DELETE", "/api/v1/tokens/"+c.ID, nil, nil)
	b.wantError(404, lobby.RoleAdmin, "DELETE", "/api/v1/tokens/jtk_nope", nil, "", `join token "jtk_nope" does not exist`)
	b.want(204, lobby.RoleAdmin, "DELETE", "/api/v1/tokens/"+c.ID, nil, nil)
	b.want(200, lobby.RoleAdmin, "GET", "/api/v1/tokens", nil, &l)
	if l.Items[0]["revoked"] != true || l.Items[0]["state"] != "revoked" {
		t.Fatalf("after revoke: %+v", l.Items)
	}
}

func TestLinks(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var l struct {
		Items []link.Status
		Next  string
	}
	b.want(200, lobby.RoleOperator, "GET", "/api/v1/links", nil, &l)
	if l.Items == nil || len(l.Items) != 0 {
		t.Fatalf("no links: %+v", l)
	}
	b.hub.mu.Lock()
	b.hub.links = []link.Status{{Kind: "leaf", State: "up", Hub: "node1", Peer: "alpha", HostID: "hst_a", Address: "192.0.2.9:4000", RTTMillis: 0.5}}
	b.hub.mu.Unlock()
	b.want(200, lobby.RoleAdmin, "GET", "/api/v1/links", nil, &l)
	if len(l.Items) != 1 || l.Items[0].Peer != "alpha" || l.Items[0].RTTMillis != 0.5 {
		t.Fatalf("links %+v", l)
	}
	b.want(403, lobby.RoleUser, "GET", "/api/v1/links", nil, nil)
}

func TestHostRevokeAndRemove(t *testing.T) {
	t.Parallel()
	b := setup(t)
	revoke := map[string]string{"action": "revoke"}
	b.wantError(404, lobby.RoleAdmin, "POST", "/api/v1/hosts/nope/actions", revoke, "", `host "nope" does not exist`)
	b.wantError(404, lobby.RoleAdmin, "DELETE", "/api/v1/hosts/nope", nil, "", `host "nope" does not exist`)
	b.want(403, lobby.RoleOperator, "POST", "/api/v1/hosts/nope/actions", revoke, nil)
	b.want(403, lobby.RoleOperator, "DELETE", "/api/v1/hosts/nope", nil, nil)

	h := &lobby.Host{Name: "alpha", Provider: "local", State: lobby.HostUp, CertSerial: "0f"}
	if err := b.st.CreateHost(context.Background(), h); err != nil {
		t.Fatal(err)
	}
	b.wantError(400, lobby.RoleAdmin, "POST", "/api/v1/hosts/alpha/actions", map[string]string{"action": "explode"}, "action", "use revoke")
	b.hub.mu.Lock()
	b.hub.links = []link.Status{{Kind: "leaf", State: "up", Peer: "alpha", HostID: h.ID}}
	b.hub.mu.Unlock()
	b.wantError(409, lobby.RoleAdmin, "DELETE", "/api/v1/hosts/alpha", nil, "", "revoke it first")

	var got lobby.Host
	b.want(200, lobby.RoleAdmin, "POST", "/api/v1/hosts/alpha/actions", revoke, &got)
	if !got.Revoked || got.State != lobby.HostDown || len(b.hub.cuts) != 1 || b.hub.cuts[0] != h.ID {
		t.Fatalf("revoked %+v, cuts %q", got, b.hub.cuts)
	}
	b.hub.mu.Lock()
	b.hub.links = nil
	b.hub.mu.Unlock()
	b.want(204, lobby.RoleAdmin, "DELETE", "/api/v1/hosts/"+h.ID, nil, nil)
	b.want(404, lobby.RoleAdmin, "GET", "/api/v1/hosts/"+h.ID, nil, nil)
}
