package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"lobby/internal/store/sqlite"
	"lobby/internal/store/sqlstore"
)

// olderDatabase makes data/lobby.db at schema version 10, as a release
// before this one left it.
func olderDatabase(t *testing.T, data string) {
	t.Helper()
	db, err := sqlite.Open(t.Context(), filepath.Join(data, "lobby.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := sqlstore.MigrateTo(t.Context(), db.MigrateConfig(), 10); err != nil {
		t.Fatal(err)
	}
}

// TestNoMigrateThenAdminDBMigrate: a node of this release started with
// --no-migrate on an older database is in maintenance mode (a user is
// refused by the API and the sign-in page with the reason and what to do,
// an administrator signs in and sees the banner, /readyz says 503); `lobby
// admin db migrate --dry-run` says what it would do and changes nothing;
// `lobby admin db migrate` migrates, and the running node serves everyone
// again at its next heartbeat.
func TestNoMigrateThenAdminDBMigrate(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	olderDatabase(t, data)
	m, banner := startNode(t, []string{"--data", data, "--listen", "127.0.0.1:0", "--plain-http", "--no-migrate"},
		map[string]string{"LOBBY_ADMIN_PASSWORD": "first admin password"})
	why := fmt.Sprintf("database schema 10, this node expects %d: run `lobby admin db migrate`", sqlstore.SchemaVersion)
	if !strings.Contains(banner, "Maintenance: "+why) {
		t.Fatalf("banner:\n%s", banner)
	}
	base := m.URL()
	admin := apiLogin(t, base, "admin", "first admin password", http.StatusOK)
	apiCall(t, base, admin, "POST", "/api/v1/users", map[string]any{"username": "alice", "password": "alice password 1", "role": "user"}, http.StatusCreated)

	var refusal struct {
		Error struct{ Code, Message string }
	}
	body := apiCall(t, base, "", "POST", "/api/v1/login", map[string]string{"username": "alice", "password": "alice password 1"}, http.StatusServiceUnavailable)
	if err := json.Unmarshal(body, &refusal); err != nil || refusal.Error.Code != "maintenance" || !strings.Contains(refusal.Error.Message, why) {
		t.Fatalf("alice's sign-in: %s", body)
	}
	if code, text := get(t, base+"/readyz", ""); code != http.StatusServiceUnavailable || !strings.Contains(text, "maintenance mode") {
		t.Errorf("/readyz in maintenance mode = %d %q", code, text)
	}
	// The pages: a clear sign-in page, a refusal with the reason, and the
	// banner on an administrator's pages.
	if code, page := get(t, base+"/login", ""); code != http.StatusOK || !strings.Contains(page, `id="maintenance"`) || !strings.Contains(page, "only administrators can sign in right now") {
		t.Errorf("sign-in page in maintenance mode = %d:\n%s", code, page)
	}
	if code, page, _ := postForm(t, base+"/login", url.Values{"username": {"alice"}, "password": {"alice password 1"}}); code != http.StatusServiceUnavailable || !strings.Contains(page, "only administrators can sign in here") {
		t.Errorf("alice's sign-in page = %d:\n%s", code, page)
	}
	code, _, cookie := postForm(t, base+"/login", url.Values{"username": {"admin"}, "password": {"first admin password"}})
	if code != http.StatusSeeOther || cookie == "" {
		t.Fatalf("administrator's web sign-in = %d (cookie %q)", code, cookie)
	}
	if code, page := get(t, base+"/admin", cookie); code != http.StatusOK || !strings.Contains(page, "This node is in maintenance mode: database schema 10") {
		t.Errorf("administrator's status page = %d, without the banner:\n%s", code, page)
	}

	var out, errs bytes.Buffer
	if c := runDBMigrate(context.Background(), []string{"--data", data, "--dry-run"}, &out, &errs, env(nil)); c != 0 {
		t.Fatalf("--dry-run exit %d: %s", c, errs.String())
	}
	for _, want := range []string{"schema 10 (floor 0); this binary knows", "00012_schema_compat.sql", "expand: earlier releases keep running", "Resuming:", "site 1", "Dry run: nothing changed."} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--dry-run output lacks %q:\n%s", want, out.String())
		}
	}
	if s, _ := m.srv.Store.Schema(t.Context()); s.Version != 10 {
		t.Fatalf("--dry-run migrated the database to %d", s.Version)
	}
	out.Reset()
	if c := runDBMigrate(context.Background(), []string{"--data", data}, &out, &errs, env(nil)); c != 0 {
		t.Fatalf("migrate exit %d: %s", c, errs.String())
	}
	if !strings.Contains(out.String(), fmt.Sprintf("Migrated:  schema 10 → %d (floor 0 → 0)", sqlstore.SchemaVersion)) {
		t.Errorf("migrate output:\n%s", out.String())
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, _ := get(t, base+"/readyz", "")
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the node did not leave maintenance mode after the migration")
		}
		time.Sleep(100 * time.Millisecond)
	}
	apiLogin(t, base, "alice", "alice password 1", http.StatusOK)
	if code, page := get(t, base+"/login", ""); code != http.StatusOK || strings.Contains(page, `id="maintenance"`) {
		t.Errorf("sign-in page after maintenance = %d, still with the banner", code)
	}
	// Again: nothing to do.
	out.Reset()
	if c := runDBMigrate(context.Background(), []string{"--data", data}, &out, &errs, env(nil)); c != 0 || !strings.Contains(out.String(), "Nothing to do: the database is up to date.") {
		t.Errorf("second migrate: exit %d\n%s%s", c, out.String(), errs.String())
	}
}

func TestAdminDBMigrateRefusals(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"--data", t.TempDir()}, 1, "no database at"},
		{[]string{"now"}, 2, `unexpected argument "now"`},
		{[]string{"--log-level", "loud", "--data", t.TempDir()}, 2, "--log-level"},
	}
	for _, tt := range tests {
		var out, errs bytes.Buffer
		code := runDBMigrate(context.Background(), tt.args, &out, &errs, env(nil))
		if code != tt.code || !strings.Contains(errs.String(), tt.msg) {
			t.Errorf("admin db migrate %q: exit %d, %q; want %d with %q", tt.args, code, errs.String(), tt.code, tt.msg)
		}
	}
}

func apiCall(t *testing.T, base, token, method, path string, in any, want int) []byte {
	t.Helper()
	b, _ := json.Marshal(in)
	req, _ := http.NewRequest(method, base+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s = %d, want %d: %s", method, path, resp.StatusCode, want, body)
	}
	return body
}

func apiLogin(t *testing.T, base, user, pw string, want int) string {
	t.Helper()
	var res struct{ Token string }
	_ = json.Unmarshal(apiCall(t, base, "", "POST", "/api/v1/login", map[string]string{"username": user, "password": pw}, want), &res)
	return res.Token
}

func get(t *testing.T, u, cookie string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// postForm posts a form without following redirects, and returns the
// session cookie it set, if any.
func postForm(t *testing.T, u string, form url.Values) (int, string, string) {
	t.Helper()
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.PostForm(u, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	cookie := ""
	for _, c := range resp.Cookies() {
		if c.Name == "lobby_session" && c.Value != "" {
			cookie = c.Name + "=" + c.Value
		}
	}
	return resp.StatusCode, string(b), cookie
}
