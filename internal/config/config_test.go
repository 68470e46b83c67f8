package config

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPrecedence(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "lobby.yaml")
	if err := os.WriteFile(file, []byte("listen: file:1\nsite-id: 3\ndata: /file\nplain-http: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"LOBBY_SITE_ID": "7", "LOBBY_DATA": "/env"}
	tests := []struct {
		name, args string
		wantListen string
		wantSite   int
		wantData   string
		wantPlain  bool
	}{
		{"file and env", "", "file:1", 7, "/env", true},
		{"flag beats env", "--site-id 9", "file:1", 9, "/env", true},
		{"flag beats file", "--listen flag:2 --data /flag", "flag:2", 7, "/flag", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := flag.NewFlagSet("x", flag.ContinueOnError)
			listen := fs.String("listen", "", "")
			site := fs.Int("site-id", 1, "")
			data := fs.String("data", "", "")
			plain := fs.Bool("plain-http", false, "")
			fs.String("config", "", "")
			if err := fs.Parse(strings.Fields(tt.args)); err != nil {
				t.Fatal(err)
			}
			if err := Load(fs, file, func(k string) string { return env[k] }); err != nil {
				t.Fatal(err)
			}
			if *listen != tt.wantListen || *site != tt.wantSite || *data != tt.wantData || *plain != tt.wantPlain {
				t.Errorf("got listen=%s site=%d data=%s plain=%t", *listen, *site, *data, *plain)
			}
		})
	}
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name, path string
		env        map[string]string
		want       string
	}{
		{"unknown key", write("a.yaml", "lissten: x\n"), nil, `unknown option "lissten"`},
		{"not yaml", write("b.yaml", "listen: [x\n"), nil, "not valid YAML"},
		{"wrong type", write("c.yaml", "site-id: abc\n"), nil, "option site-id"},
		{"bad env", "", map[string]string{"LOBBY_SITE_ID": "x"}, "LOBBY_SITE_ID"},
		{"missing file", filepath.Join(dir, "nope.yaml"), nil, "read config file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := flag.NewFlagSet("x", flag.ContinueOnError)
			fs.String("listen", "", "")
			fs.Int("site-id", 1, "")
			if err := fs.Parse(nil); err != nil {
				t.Fatal(err)
			}
			err := Load(fs, tt.path, func(k string) string { return tt.env[k] })
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
