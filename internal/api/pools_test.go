package api_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"lobby/internal/cli"
	"lobby/internal/lobby"
)

// lobby runs the CLI against the bundle's API as role.
func (b *bundle) lobby(role lobby.Role, args ...string) (code int, stdout, stderr string) {
	b.t.Helper()
	var out, errOut bytes.Buffer
	env := map[string]string{"LOBBY_SERVER": b.base, "LOBBY_TOKEN": b.tokens[role]}
	code = cli.Main(context.Background(), args, cli.Env{Stdout: &out, Stderr: &errOut, ConfigDir: b.t.TempDir(),
		Getenv: func(k string) string { return env[k] }})
	return code, out.String(), errOut.String()
}

// shown reads the "field: value" lines of `lobby ... show`.
func shown(out string) map[string]string {
	fields := map[string]string{}
	for line := range strings.Lines(out) {
		k, v, _ := strings.Cut(line, ":")
		fields[k] = strings.TrimSpace(v)
	}
	return fields
}

// TestSetAndRemovePoolByCLI: an administrator at a shell changes a pool
// and a policy field by field with `lobby pools set` and `lobby policies
// set` (PUT changes only the fields given), and removes a pool that still
// has desktops by following the refusal's advice. The refusal keeps its
// HTTP status and error code.
func TestSetAndRemovePoolByCLI(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	var pool lobby.Pool
	b.want(201, lobby.RoleAdmin, "POST", "/api/v1/pools", map[string]any{"name": "demo", "min_size": 2, "max_size": 3, "min_free": 2}, &pool)
	h := &lobby.Host{Name: "alpha", Provider: "local", State: lobby.HostUp}
	if err := b.st.CreateHost(ctx, h); err != nil {
		t.Fatal(err)
	}
	var desktops []string
	for i := 1; i <= 2; i++ {
		d := &lobby.Desktop{Name: fmt.Sprintf("demo-%d", i), HostID: h.ID, PoolID: pool.ID, Power: lobby.PowerRunning, ConsoleKind: "vnc", Tags: []string{}}
		if err := b.st.CreateDesktop(ctx, d); err != nil {
			t.Fatal(err)
		}
		desktops = append(desktops, d.ID)
	}
	b.want(201, lobby.RoleAdmin, "POST", "/api/v1/policies", map[string]any{"name": "demo", "pools": []string{"demo"}, "users": []string{"*"},
		"max_desktops": 1, "release": map[string]any{"on_logoff": true, "at_time": "19:30"}}, nil)

	run := func(wantCode int, role lobby.Role, args ...string) string {
		t.Helper()
		code, stdout, stderr := b.lobby(role, args...)
		if code != wantCode {
			t.Fatalf("lobby %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, wantCode, stdout, stderr)
		}
		return stdout + stderr
	}
	getPool := func() lobby.Pool {
		var p lobby.Pool
		b.want(200, lobby.RoleAdmin, "GET", "/api/v1/pools/demo", nil, &p)
		return p
	}

	// --min 0 sends 0 and leaves the rest alone.
	out := run(cli.ExitOK, lobby.RoleAdmin, "pools", "set", "demo", "--min", "0")
	if f := shown(out); f["min_size"] != "0" || f["max_size"] != "3" || f["counts.total"] != "2" {
		t.Fatalf("pools set shows:\n%s", out)
	}
	if p := getPool(); p.MinSize != 0 || p.MaxSize != 3 || p.MinFree != 2 || p.NamePattern != "demo-{n}" || p.Template != "default" {
		t.Fatalf("after --min 0: %+v", p)
	}
	// Refusals change nothing.
	if out := run(cli.ExitFailure, lobby.RoleAdmin, "pools", "set", "demo", "--min-free", "4"); !strings.Contains(out, "lobby: min_free (4) must not exceed max_size (3)\n") {
		t.Fatalf("too many free: %s", out)
	}
	if out := run(cli.ExitNotFound, lobby.RoleAdmin, "pools", "set", "nope", "--min", "0"); out != "lobby: pool \"nope\" does not exist\n" {
		t.Fatalf("unknown pool: %q", out)
	}
	run(cli.ExitUnauthorized, lobby.RoleOperator, "pools", "set", "demo", "--max", "9")
	run(cli.ExitUsage, lobby.RoleAdmin, "pools", "set", "demo")
	if p := getPool(); p.MinSize != 0 || p.MaxSize != 3 || p.MinFree != 2 {
		t.Fatalf("after the refusals: %+v", p)
	}

	// The policy: lists given replace the lists, the release plan keeps
	// what was not given.
	out = run(cli.ExitOK, lobby.RoleAdmin, "policies", "set", "demo", "--users", "", "--groups", "staff", "--release-on-logoff=false", "--priority", "3")
	if f := shown(out); f["groups"] != "staff" || f["users"] != "-" || f["release.at_time"] != "19:30" {
		t.Fatalf("policies set shows:\n%s", out)
	}
	var pol lobby.Policy
	b.want(200, lobby.RoleAdmin, "GET", "/api/v1/policies/demo", nil, &pol)
	if len(pol.Users) != 0 || !slices.Equal(pol.Groups, []string{"staff"}) || !slices.Equal(pol.Pools, []string{pool.ID}) || pol.Release.OnLogoff ||
		pol.Release.AtTime != "19:30" || pol.Priority != 3 || pol.MaxDesktops != 1 {
		t.Fatalf("after policies set: %+v", pol)
	}
	if out := run(cli.ExitFailure, lobby.RoleAdmin, "policies", "set", "demo", "--pools", "demo,ghost"); !strings.Contains(out, `policy names pool "ghost", which does not exist`) {
		t.Fatalf("unknown pool in a policy: %s", out)
	}
	run(cli.ExitNotFound, lobby.RoleAdmin, "policies", "set", "nope", "--max", "2")

	// Removing the pool: refused, saying how, by the CLI and by the API
	// (409 conflict, as before).
	want := "pool demo still has 2 desktops: set its minimum size and free desktops to 0 (lobby pools set demo --min 0 --min-free 0," +
		" or PUT /api/v1/pools/demo with min_size and min_free 0) and delete its desktops"
	if out := run(cli.ExitConflict, lobby.RoleAdmin, "pools", "rm", "demo"); !strings.HasPrefix(out, "lobby: "+want) {
		t.Fatalf("pools rm:\n%s\nwant it to start with:\nlobby: %s", out, want)
	}
	var e apiError
	b.want(409, lobby.RoleAdmin, "DELETE", "/api/v1/pools/demo", nil, &e)
	if e.Error.Code != string(lobby.KindConflict) || !strings.HasPrefix(e.Error.Message, want) {
		t.Fatalf("DELETE: %+v", e.Error)
	}
	run(cli.ExitOK, lobby.RoleAdmin, "pools", "set", "demo", "--min", "0", "--min-free", "0")
	for _, id := range desktops { // what the desktops' delete jobs end with
		if err := b.st.DeleteDesktop(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if out := run(cli.ExitOK, lobby.RoleAdmin, "pools", "rm", "demo"); out != "Deleted pool demo.\n" {
		t.Fatalf("pools rm: %q", out)
	}
	b.want(404, lobby.RoleAdmin, "GET", "/api/v1/pools/demo", nil, nil)
}
