package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"lobby/internal/client"
)

// bundle is one test's fake server and CLI environment.
type bundle struct {
	api *fakeAPI
	srv *httptest.Server
	dir string            // the config directory
	env map[string]string // the environment Main sees
}

func setup(t testing.TB) *bundle {
	t.Helper()
	api := newFakeAPI()
	srv := httptest.NewServer(api.handler())
	t.Cleanup(srv.Close)
	return &bundle{api: api, srv: srv, dir: filepath.Join(t.TempDir(), "lobby"), env: map[string]string{}}
}

// loggedIn writes a config as a login with token would.
func (b *bundle) loggedIn(t testing.TB, token string) *bundle {
	t.Helper()
	r := &runner{env: Env{ConfigDir: b.dir}}
	if err := r.saveConfig(config{Server: b.srv.URL, Token: token, User: "admin"}); err != nil {
		t.Fatal(err)
	}
	return b
}

// result is what one run of Main left behind.
type result struct {
	code           int
	stdout, stderr string
}

func (b *bundle) run(ctx context.Context, stdin string, terminal bool, args ...string) result {
	var out, errOut bytes.Buffer
	code := Main(ctx, args, Env{
		Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errOut,
		Getenv: func(k string) string { return b.env[k] }, ConfigDir: b.dir, IsTerminal: terminal,
	})
	return result{code, out.String(), errOut.String()}
}

func TestParseArgs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args    []string
		pos     []string
		max     int
		verbose bool
		err     bool
	}{
		{args: []string{"demo", "--max", "5"}, pos: []string{"demo"}, max: 5},
		{args: []string{"--max", "5", "demo"}, pos: []string{"demo"}, max: 5},
		{args: []string{"-max=5", "demo", "-v"}, pos: []string{"demo"}, max: 5, verbose: true},
		{args: []string{"demo", "-v", "extra"}, pos: []string{"demo", "extra"}, verbose: true},
		{args: []string{"--max", "-3"}, pos: nil, max: -3},
		{args: []string{"a", "--", "--max", "-"}, pos: []string{"a", "--max", "-"}},
		{args: []string{"-"}, pos: []string{"-"}},
		{args: []string{"demo", "--nope"}, err: true},
		{args: []string{"demo", "--max"}, err: true},
		{args: []string{"--max", "five"}, err: true},
	}
	for _, tt := range tests {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		maxN := fs.Int("max", 0, "")
		verbose := fs.Bool("v", false, "")
		pos, err := parseArgs(fs, tt.args)
		if (err != nil) != tt.err {
			t.Errorf("parseArgs(%q) err = %v", tt.args, err)
			continue
		}
		if tt.err {
			continue
		}
		if !reflect.DeepEqual(pos, tt.pos) || *maxN != tt.max || *verbose != tt.verbose {
			t.Errorf("parseArgs(%q) = %q, max %d, v %v", tt.args, pos, *maxN, *verbose)
		}
	}
}

func TestUsage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{args: nil, code: 2, stderr: "Commands:"},
		{args: []string{"help"}, code: 0, stdout: "pools add NAME"},
		{args: []string{"-h"}, code: 0, stdout: "connect POOL"},
		{args: []string{"help", "pools", "add"}, code: 0, stdout: "--max N"},
		{args: []string{"pools", "add", "-h"}, code: 0, stdout: "usage: lobby pools add NAME [flags]"},
		{args: []string{"frobnicate"}, code: 2, stderr: `unknown command "frobnicate"`},
		{args: []string{"pools"}, code: 2, stderr: "missing verb: use one of list, show, add, set, rm"},
		{args: []string{"help", "pools", "set"}, code: 0, stdout: "usage: lobby pools set POOL [flags]\n\nChange a pool: only the fields whose flags are given."},
		{args: []string{"policies", "set", "-h"}, code: 0, stdout: "--release-on-logoff"},
		{args: []string{"pools", "fly"}, code: 2, stderr: `unknown verb "fly"`},
		{args: []string{"pools", "list", "--nope"}, code: 2, stderr: "flag provided but not defined: -nope"},
		{args: []string{"pools", "show"}, code: 2, stderr: "missing argument POOL\nusage: lobby pools show POOL"},
		{args: []string{"pools", "show", "a", "b"}, code: 2, stderr: `unexpected argument "b"`},
		{args: []string{"pools", "add", "demo"}, code: 2, stderr: "missing --max N"},
		{args: []string{"policies", "add", "p", "--users", "*"}, code: 2, stderr: "missing --pools"},
		{args: []string{"users", "add", "bob", "--role", "king"}, code: 2, stderr: `role "king" is not valid`},
		{args: []string{"connect"}, code: 2, stderr: "missing argument POOL"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			b := setup(t).loggedIn(t, adminToken)
			res := b.run(context.Background(), "", false, tt.args...)
			if res.code != tt.code || !strings.Contains(res.stdout, tt.stdout) || !strings.Contains(res.stderr, tt.stderr) {
				t.Errorf("code %d, want %d\nstdout: %s\nstderr: %s", res.code, tt.code, res.stdout, res.stderr)
			}
		})
	}
}

func TestCommands(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		token  string // "" for no login
		env    map[string]string
		args   []string
		code   int
		stdout []string
		stderr []string
	}{
		{name: "pools table", token: adminToken, args: []string{"pools", "list"}, stdout: []string{"NAME  ID", "demo  pool_demo  2", "lab   pool_lab   -"}},
		{name: "pools show", token: adminToken, args: []string{"pools", "show", "demo"}, stdout: []string{"name_pattern:", "demo-{n}", "counts.free:"}},
		{name: "pools add", token: adminToken, args: []string{"pools", "add", "web", "--max", "5", "--min", "1"}, stdout: []string{"Created pool web (pool_web)."}},
		{name: "pools add conflict", token: adminToken, args: []string{"pools", "add", "taken", "--max", "5"}, code: 5, stderr: []string{`lobby: "taken" is taken`}},
		{name: "pools add invalid", token: adminToken, args: []string{"pools", "add", "bad!", "--max", "5"}, code: 1, stderr: []string{"not valid"}},
		{name: "pools show missing", token: adminToken, args: []string{"pools", "show", "nope"}, code: 4, stderr: []string{`lobby: pool "nope" not found`}},
		{name: "pools rm", token: adminToken, args: []string{"pools", "rm", "demo"}, stdout: []string{"Deleted pool demo."}},
		{name: "forbidden", token: userToken, args: []string{"pools", "list"}, code: 3, stderr: []string{"lobby: your role does not allow this\n"}},
		{name: "expired token", token: "stale", args: []string{"hosts", "list"}, code: 3, stderr: []string{"token expired", "run `lobby login`"}},
		{name: "not logged in", args: []string{"hosts", "list"}, code: 3, stderr: []string{"not logged in", "lobby login --server URL"}},
		{name: "env token", env: map[string]string{"LOBBY_TOKEN": adminToken, "LOBBY_SERVER": "-"}, args: []string{"hosts", "list"}, stdout: []string{"alpha  host_a  local"}},
		{name: "desktops table", token: adminToken, args: []string{"desktops", "list", "--pool", "demo"}, stdout: []string{"demo-1  dsk_1  running  demo  alpha"}},
		{name: "desktops unknown pool", token: adminToken, args: []string{"desktops", "list", "--pool", "zzz"}, code: 4, stderr: []string{`pool "zzz" does not exist`}},
		{name: "desktops empty", token: adminToken, args: []string{"desktops", "list", "--pool", "lab", "--json"}, stdout: []string{"[]\n"}},
		{name: "offers", token: userToken, args: []string{"offers", "list"}, stdout: []string{"demo  everyone  non-persistent  1     dsk_1"}},
		{name: "passwd self", token: userToken, env: map[string]string{"LOBBY_NEW_PASSWORD": "long enough pw"}, args: []string{"users", "passwd"}, stdout: []string{"Changed the password of alice."}},
		{name: "desktop by name", token: adminToken, args: []string{"desktops", "show", "demo-1"}, stdout: []string{"id:", "dsk_1"}},
		{name: "desktop action", token: adminToken, args: []string{"desktops", "restart", "demo-1"}, stdout: []string{"Queued restart of desktop demo-1 (job 7)."}},
		{name: "desktop rm", token: adminToken, args: []string{"desktops", "rm", "dsk_1"}, stdout: []string{"Queued delete"}},
		{name: "desktop missing", token: adminToken, args: []string{"desktops", "stop", "ghost"}, code: 4},
		{name: "users", token: adminToken, args: []string{"users", "list"}, stdout: []string{"alice     usr_alice  user   staff"}},
		{name: "users add", token: adminToken, env: map[string]string{"LOBBY_NEW_PASSWORD": "long enough pw"}, args: []string{"users", "add", "bob", "--groups", "a,b"}, stdout: []string{"Created user bob"}},
		{name: "users add short password", token: adminToken, env: map[string]string{"LOBBY_NEW_PASSWORD": "short"}, args: []string{"users", "add", "bob"}, code: 1, stderr: []string{"password is too short"}},
		{name: "users add no password", token: adminToken, args: []string{"users", "add", "bob"}, code: 2, stderr: []string{"set LOBBY_NEW_PASSWORD"}},
		{name: "policies", token: adminToken, args: []string{"policies", "list"}, stdout: []string{"everyone  pol_1  demo", "on logoff, at 19:30", "stop"}},
		{name: "policies add", token: adminToken, args: []string{"policies", "add", "staff", "--pools", "demo", "--groups", "staff", "--release-at", "19:30"}, stdout: []string{"Created policy staff"}},
		{name: "jobs", token: adminToken, args: []string{"jobs", "list"}, stdout: []string{"12  power  retryable  2/5", "host down"}},
		{name: "audit", token: adminToken, args: []string{"audit", "list", "--q", "pool"}, stdout: []string{"9   ", "pool.create"}, stderr: []string{"--before 9"}},
		{name: "assignments", token: userToken, args: []string{"assignments", "list"}, stdout: []string{"asg_1  dsk_1"}},
		{name: "release", token: userToken, args: []string{"release", "dsk_1"}, stdout: []string{"Released desktop demo-1."}},
		{name: "connect forbidden", token: userToken, args: []string{"connect", "secret"}, code: 3, stderr: []string{`no policy gives you pool "secret"`}},
		{name: "connect exhausted", token: userToken, args: []string{"connect", "full"}, code: 5},
		{name: "whoami", token: userToken, args: []string{"whoami"}, stdout: []string{"username:", "alice"}},
		{name: "version", token: adminToken, args: []string{"version"}, stdout: []string{"lobby dev\nserver 1.2.3"}},
		{name: "version offline", args: []string{"version"}, stdout: []string{"lobby dev\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			if tt.token != "" {
				b.loggedIn(t, tt.token)
			}
			for k, v := range tt.env {
				if v == "-" {
					v = b.srv.URL
				}
				b.env[k] = v
			}
			res := b.run(context.Background(), "", false, tt.args...)
			if res.code != tt.code || !contains(res.stdout, tt.stdout...) || !contains(res.stderr, tt.stderr...) {
				t.Errorf("code %d, want %d\nstdout:\n%s\nstderr:\n%s", res.code, tt.code, res.stdout, res.stderr)
			}
		})
	}
}

func TestListJSON(t *testing.T) {
	t.Parallel()
	b := setup(t).loggedIn(t, adminToken)
	res := b.run(context.Background(), "", false, "pools", "list", "--json")
	if res.code != 0 {
		t.Fatalf("code %d: %s", res.code, res.stderr)
	}
	var pools []client.PoolWithCounts
	if err := json.Unmarshal([]byte(res.stdout), &pools); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, res.stdout)
	}
	if len(pools) != 2 || pools[0].Name != "demo" || pools[0].Counts.Free != 1 || pools[1].Name != "lab" {
		t.Errorf("pools = %+v", pools)
	}
	var raw []map[string]any
	json.Unmarshal([]byte(res.stdout), &raw)
	if _, ok := raw[0]["min_size"]; !ok {
		t.Errorf("JSON does not use the API's field names: %s", res.stdout)
	}

	res = b.run(context.Background(), "", false, "desktops", "list", "--json", "--pool", "demo")
	var ds []map[string]any
	if err := json.Unmarshal([]byte(res.stdout), &ds); err != nil || len(ds) != 1 || ds[0]["name"] != "demo-1" {
		t.Errorf("desktops --json = %s (%v)", res.stdout, err)
	}
}
