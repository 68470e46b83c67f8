package e2e

import (
	"net/http"
	"strings"
	"testing"

	"lobby/internal/freeport"
	"lobby/internal/linkproto"
	"lobby/internal/pki"
	"lobby/internal/store/pgtest"
)

// TestDatabaseSwitch grows a trial into a cluster and back, with real
// processes: a standalone node with a linked host agent is stopped, its
// data copied into PostgreSQL by `lobby admin db switch --copy`, and
// `lobby server --data DIR` then runs on PostgreSQL with the same
// administrator password, users, pools and cluster CA, and the agent
// links again without a new join. `--embedded` moves it back. The
// commands refuse a running node, and bad usage exits 2.
func TestDatabaseSwitch(t *testing.T) {
	t.Parallel()
	requireDesktops(t) // the agent's provider wants Xvnc
	pgURL, key := pgtest.URL(t), pki.NewClusterKeyString()
	data, listen := t.TempDir(), freeAddr(t)

	n := startNodeAt(t, "standalone", data, listen, nil)
	n.admin.want(http.StatusCreated, "POST", "/api/v1/users", map[string]any{"username": "alice", "password": "alice's password", "role": "user"}, nil)
	n.admin.want(http.StatusCreated, "POST", "/api/v1/pools", map[string]any{"name": "lab", "min_size": 0, "max_size": 2, "name_pattern": "lab-{n}", "template": "default"}, nil)
	tok := n.token(t, 1, "1h")
	ca := caOf(t, tok.Token)
	agent := startAgent(t, "host-a", agentDir(t), tok.Token, n.url)
	eventually(t, "host-a is linked to the standalone node", func() bool { _, up := n.linkUp(t, "host-a"); return up })

	t.Log("step: the commands refuse a running node, and bad usage")
	moveRefused(t, 1, []string{"LOBBY_CLUSTER_KEY=" + key}, "stop it first", "admin", "db", "switch", "--data", data, "--postgres", pgURL, "--site-id", "1", "--copy")
	moveRefused(t, 2, nil, "--site-id", "admin", "db", "switch", "--data", data, "--postgres", pgURL)
	moveRefused(t, 2, nil, "--postgres URL", "admin", "db", "copy", "--data", data)
	if code := n.p.terminate(t); code != 0 {
		t.Fatalf("the standalone node exited with %d on SIGTERM", code)
	}

	t.Log("step: switch to PostgreSQL, copying the data")
	out := move(t, []string{"LOBBY_CLUSTER_KEY=" + key}, "admin", "db", "switch", "--data", data, "--postgres", pgURL, "--site-id", "1", "--copy")
	for _, want := range []string{"in one transaction", "users", "sealed with LOBBY_CLUSTER_KEY", "now uses the database at postgres://"} {
		if !strings.Contains(out, want) {
			t.Errorf("switch output lacks %q:\n%s", want, out)
		}
	}
	n = startNodeAt(t, "on PostgreSQL", data, listen, []string{"LOBBY_CLUSTER_KEY=" + key})
	if !strings.Contains(n.p.stdout.String(), "Store:       PostgreSQL, site ID 1") {
		t.Fatalf("the switched node does not say it runs on PostgreSQL:\n%s", n.p.stdout.String())
	}
	n.login(t, "alice", "alice's password")
	n.admin.want(http.StatusOK, "GET", "/api/v1/pools/lab", nil, nil)
	if got := caOf(t, n.token(t, 1, "1h").Token); got != ca {
		t.Errorf("the CA on PostgreSQL is %s, was %s", got, ca)
	}
	eventually(t, "host-a links to the node on PostgreSQL with its certificate", func() bool { _, up := n.linkUp(t, "host-a"); return up })
	if agent.exited() || strings.Count(agent.stdout.String(), "Joined the cluster") != 1 {
		t.Fatalf("the agent exited or joined again:\n%s", agent.stdout.String())
	}
	if code := n.p.terminate(t); code != 0 {
		t.Fatalf("the node on PostgreSQL exited with %d on SIGTERM", code)
	}

	t.Log("step: back to the embedded database")
	out = move(t, nil, "admin", "db", "switch", "--data", data, "--embedded")
	if !strings.Contains(out, "join_tokens 1") || !strings.Contains(out, "now uses its embedded database") {
		t.Errorf("switch back output does not name the token made on PostgreSQL:\n%s", out)
	}
	n = startNodeAt(t, "standalone again", data, listen, nil)
	if !strings.Contains(n.p.stdout.String(), "Store:       SQLite") {
		t.Fatalf("the node moved back does not run on SQLite:\n%s", n.p.stdout.String())
	}
	eventually(t, "host-a links to the standalone node again", func() bool { _, up := n.linkUp(t, "host-a"); return up })
}

// startNodeAt starts `lobby server` on data and listen (plain HTTP) with
// the first administrator's password and env, and signs in.
func startNodeAt(tb testing.TB, name, data, listen string, env []string) *node {
	tb.Helper()
	n := launchNode(tb, name, env, "--listen", listen, "--data", data, "--name", "hub1.test")
	n.admin = n.login(tb, "admin", adminPW)
	return n
}

// move runs a `lobby admin db` command that must succeed and returns its
// output.
func move(tb testing.TB, env []string, args ...string) string {
	tb.Helper()
	p := start(tb, "lobby "+strings.Join(args[:3], " "), env, args...)
	if code := p.wait(tb); code != 0 {
		tb.Fatalf("lobby %s exited with %d:\n%s%s", strings.Join(args, " "), code, p.stdout.String(), p.stderr.String())
	}
	return p.stdout.String()
}

// moveRefused runs a `lobby admin db` command that must exit with code
// and say want on stderr.
func moveRefused(tb testing.TB, code int, env []string, want string, args ...string) {
	tb.Helper()
	p := start(tb, "lobby "+strings.Join(args[:3], " "), env, args...)
	if got := p.wait(tb); got != code || !strings.Contains(p.stderr.String(), want) {
		tb.Fatalf("lobby %s exited with %d, want %d with %q:\n%s", strings.Join(args, " "), got, code, want, p.stderr.String())
	}
}

// caOf is the CA fingerprint a join token carries.
func caOf(tb testing.TB, token string) string {
	tb.Helper()
	jt, err := linkproto.ParseJoinToken(token)
	if err != nil {
		tb.Fatal(err)
	}
	return pki.FingerprintHex(jt.CAFingerprint)
}

// freeAddr is a loopback address with a port free now, for a node that
// must come back on the same address (its agents' hub): a port no other
// listener or connection is given while the node is down between its runs.
func freeAddr(tb testing.TB) string {
	tb.Helper()
	addr, err := freeport.Addr()
	if err != nil {
		tb.Fatal(err)
	}
	return addr
}
