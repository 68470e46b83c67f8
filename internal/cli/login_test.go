package cli

import (
	"context"
	"encoding/json"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"lobby/internal/client"
)

func TestLogin(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("env password", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.env["LOBBY_PASSWORD"] = adminPW
		res := b.run(ctx, "", false, "login", "--server", b.srv.URL+"/", "--user", "admin")
		if res.code != 0 || !strings.Contains(res.stdout, "Logged in to "+b.srv.URL+" as admin (admin)") {
			t.Fatalf("code %d\n%s%s", res.code, res.stdout, res.stderr)
		}
		checkConfig(t, b.dir, b.srv.URL, adminToken)

		if res := b.run(ctx, "", false, "whoami", "--json"); res.code != 0 || !strings.Contains(res.stdout, `"username": "admin"`) {
			t.Errorf("whoami after login: %+v", res)
		}
		if res := b.run(ctx, "", false, "logout"); res.code != 0 || !strings.Contains(res.stdout, "Logged out") {
			t.Errorf("logout: %+v", res)
		}
		if res := b.run(ctx, "", false, "hosts", "list"); res.code != 3 || !strings.Contains(res.stderr, "run `lobby login`") {
			t.Errorf("after logout: %+v", res)
		}
	})
	t.Run("terminal prompts", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		res := b.run(ctx, "admin\n"+adminPW+"\n", true, "login", "--server", b.srv.URL)
		if res.code != 0 || !contains(res.stderr, "Username: ", "Password for admin at ") {
			t.Fatalf("%+v", res)
		}
		checkConfig(t, b.dir, b.srv.URL, adminToken)
		// A second login remembers the server and user.
		res = b.run(ctx, adminPW+"\n", true, "login")
		if res.code != 0 || strings.Contains(res.stderr, "Username") {
			t.Fatalf("second login: %+v", res)
		}
	})
	t.Run("no password", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		res := b.run(ctx, "", false, "login", "--server", b.srv.URL, "--user", "admin")
		if res.code != 2 || !strings.Contains(res.stderr, "no password: set LOBBY_PASSWORD") {
			t.Fatalf("%+v", res)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.env["LOBBY_PASSWORD"] = "guess"
		res := b.run(ctx, "", false, "login", "--server", b.srv.URL, "--user", "admin")
		if res.code != 3 || !strings.Contains(res.stderr, "lobby: wrong username or password\n") {
			t.Fatalf("%+v", res)
		}
		if _, err := os.Stat(filepath.Join(b.dir, configFile)); err == nil {
			t.Error("a failed login wrote the config")
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.srv.Close()
		b.env["LOBBY_PASSWORD"] = adminPW
		res := b.run(ctx, "", false, "login", "--server", b.srv.URL, "--user", "admin")
		if res.code != 1 || !contains(res.stderr, "cannot reach Lobby at "+b.srv.URL, "is `lobby server` running?") {
			t.Fatalf("%+v", res)
		}
	})
}

// checkConfig checks the saved login and the modes of the file and its
// directory.
func checkConfig(t testing.TB, dir, server, token string) {
	t.Helper()
	for path, mode := range map[string]os.FileMode{dir: 0o700 | os.ModeDir, filepath.Join(dir, configFile): 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != mode {
			t.Errorf("%s mode %v, want %v", path, fi.Mode(), mode)
		}
	}
	b, _ := os.ReadFile(filepath.Join(dir, configFile))
	var cfg map[string]any
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg["server"] != server || cfg["token"] != token || cfg["user"] != "admin" {
		t.Errorf("config = %s", b)
	}
}

func TestLoginPinned(t *testing.T) {
	t.Parallel()
	api := newFakeAPI()
	srv := httptest.NewUnstartedServer(api.handler())
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are the point
	srv.StartTLS()
	t.Cleanup(srv.Close)
	b := &bundle{api: api, srv: srv, dir: filepath.Join(t.TempDir(), "lobby"), env: map[string]string{"LOBBY_PASSWORD": adminPW}}
	ctx := context.Background()
	fp := client.Fingerprint(srv.Certificate().Raw)

	res := b.run(ctx, "", false, "login", "--server", srv.URL, "--user", "admin")
	if res.code != 1 || !contains(res.stderr, "not trusted", fp) {
		t.Fatalf("unpinned: %+v", res)
	}
	res = b.run(ctx, "", false, "login", "--server", srv.URL, "--user", "admin", "--fingerprint", fp)
	if res.code != 0 {
		t.Fatalf("pinned: %+v", res)
	}
	if res := b.run(ctx, "", false, "hosts", "list"); res.code != 0 {
		t.Fatalf("after pinned login: %+v", res)
	}
	bad := strings.Repeat("AB:", 31) + "AB"
	res = b.run(ctx, "", false, "login", "--fingerprint", bad)
	if res.code != 1 || !contains(res.stderr, "fingerprint is "+fp, "not the pinned "+bad) {
		t.Fatalf("wrong pin: %+v", res)
	}
	res = b.run(ctx, "", false, "login", "--fingerprint", "xyz")
	if res.code != 2 || !contains(res.stderr, "not a SHA-256 fingerprint") {
		t.Fatalf("malformed pin: %+v", res)
	}
}

func TestEnvServerDropsSavedToken(t *testing.T) {
	t.Parallel()
	b := setup(t).loggedIn(t, adminToken)
	other := setup(t)
	b.env["LOBBY_SERVER"] = other.srv.URL
	res := b.run(context.Background(), "", false, "hosts", "list")
	if res.code != 3 || !strings.Contains(res.stderr, "not logged in to "+other.srv.URL) {
		t.Fatalf("%+v", res)
	}
}

func TestPasswordPrompts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t).loggedIn(t, adminToken)
	res := b.run(ctx, "new password 1\nnew password 1\n", true, "users", "passwd", "alice")
	if res.code != 0 || !contains(res.stderr, "New password for alice: ", "Again: ") {
		t.Fatalf("%+v", res)
	}
	if _, _, _, _, pw := b.api.snapshot(); pw[alice.ID] != "new password 1" {
		t.Errorf("passwords = %v", pw)
	}
	res = b.run(ctx, "new password 1\nnew password 2\n", true, "users", "passwd", "alice")
	if res.code != 2 || !strings.Contains(res.stderr, "do not match") {
		t.Fatalf("mismatch: %+v", res)
	}
}
