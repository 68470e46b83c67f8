package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"lobby/internal/auth"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// startNode runs `lobby server` through Main, the binary's own wiring.
func startNode(t *testing.T, args []string, vars map[string]string) (*Main, string) {
	t.Helper()
	var out bytes.Buffer
	m := &Main{Stdout: &out, Stderr: io.Discard, Getenv: env(vars)}
	if err := m.ParseFlags("server", args); err != nil {
		t.Fatal(err)
	}
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m, out.String()
}

func TestServerServesHTTPSWithItsOwnCertificate(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	args := []string{"--data", data, "--listen", "127.0.0.1:0"}
	m, banner := startNode(t, args, map[string]string{"LOBBY_ADMIN_PASSWORD": "first admin password"})
	if !strings.Contains(banner, "admin, with the password from LOBBY_ADMIN_PASSWORD") || !strings.Contains(banner, "new self-signed certificate") {
		t.Fatalf("banner:\n%s", banner)
	}
	if !strings.HasPrefix(m.URL(), "https://") {
		t.Fatalf("URL %s is not HTTPS", m.URL())
	}
	// The certificate served is the one whose fingerprint was printed.
	var served string
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			sum := sha256.Sum256(cs.PeerCertificates[0].Raw)
			served = fmt.Sprintf("% X", sum[:])
			return nil
		},
	}}}
	resp, err := hc.Get(m.URL() + "/version")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != version {
		t.Fatalf("/version: %d %q", resp.StatusCode, body)
	}
	if !strings.Contains(banner, strings.ReplaceAll(served, " ", ":")) {
		t.Fatalf("served certificate %s is not the printed one:\n%s", served, banner)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	// A second start keeps the administrator and the certificate, and says
	// the environment password is ignored.
	_, banner2 := startNode(t, args, map[string]string{"LOBBY_ADMIN_PASSWORD": "another password"})
	if !strings.Contains(banner2, "LOBBY_ADMIN_PASSWORD is ignored") || strings.Contains(banner2, "new self-signed") {
		t.Fatalf("second banner:\n%s", banner2)
	}
}

func TestFirstStartPrintsAGeneratedPasswordOnce(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	args := []string{"--data", data, "--listen", "127.0.0.1:0", "--plain-http"}
	m, banner := startNode(t, args, nil)
	if !strings.Contains(banner, "Admin:       admin / ") || !strings.HasPrefix(m.URL(), "http://") {
		t.Fatalf("banner:\n%s", banner)
	}
	m.Close()
	_, banner2 := startNode(t, args, nil)
	if strings.Contains(banner2, "admin / ") || !strings.Contains(banner2, "exists already") {
		t.Fatalf("second start printed a password:\n%s", banner2)
	}
}

func TestOptionsFromFileEnvironmentAndFlags(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "lobby.yaml")
	if err := os.WriteFile(file, []byte("site-id: 4\nlisten: 127.0.0.1:9\nplain-http: true\npassword-hash: m=19456,t=2,p=1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	m := &Main{Stdout: io.Discard, Stderr: io.Discard, Getenv: env(map[string]string{"LOBBY_SITE_ID": "5", "LOBBY_DATA": dir})}
	if err := m.ParseFlags("server", []string{"--config", file, "--listen", "127.0.0.1:7"}); err != nil {
		t.Fatal(err)
	}
	c := m.Config
	if c.SiteID != 5 || c.Listen != "127.0.0.1:7" || !c.PlainHTTP || c.DataDir != dir {
		t.Fatalf("got site %d listen %s plain %t data %s", c.SiteID, c.Listen, c.PlainHTTP, c.DataDir)
	}
	if c.PasswordHash != (auth.Params{Memory: 19456, Time: 2, Threads: 1}) {
		t.Fatalf("password-hash from the file: got %s", c.PasswordHash)
	}
	// Without the option, the default.
	m = &Main{Stdout: io.Discard, Stderr: io.Discard, Getenv: env(map[string]string{"LOBBY_DATA": dir})}
	if err := m.ParseFlags("dev", nil); err != nil {
		t.Fatal(err)
	}
	if m.Config.PasswordHash != auth.DefaultParams {
		t.Fatalf("default password-hash: got %s, want %s", m.Config.PasswordHash, auth.DefaultParams)
	}
}

func TestBadInvocations(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	badYAML := filepath.Join(dir, "bad.yaml")
	os.WriteFile(badYAML, []byte("colour: red\n"), 0o600)
	tests := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"dev on a public address", []string{"dev", "--listen", "0.0.0.0:8080", "--data", dir}, 2, "only on loopback"},
		{"unknown config key", []string{"server", "--config", badYAML, "--data", dir}, 2, `unknown option "colour"`},
		{"stray argument", []string{"server", "now"}, 2, "unexpected argument"},
		{"bad site id", []string{"server", "--site-id", "0", "--data", dir, "--listen", "127.0.0.1:0"}, 2, "--site-id"},
		{"bad log level", []string{"server", "--log-level", "loud"}, 2, "--log-level"},
		{"bad advertise", []string{"server", "--advertise", "node-b:8443", "--data", dir}, 2, "--advertise: hub \"node-b:8443\" is not a URL like https://node:8443"},
		{"negative job takeover", []string{"server", "--job-takeover", "-1s", "--data", dir}, 2, "--job-takeover -1s is not valid"},
		{"weak password hash", []string{"server", "--password-hash", "m=1024,t=1,p=1", "--data", dir}, 2, "weaker than OWASP's guidance"},
		{"data is a file", []string{"server", "--data", badYAML, "--listen", "127.0.0.1:0"}, 1, "--data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			code := run(context.Background(), tt.args, io.Discard, &stderr)
			if code != tt.code || !strings.Contains(stderr.String(), tt.msg) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, stderr.String(), tt.code, tt.msg)
			}
		})
	}
}
