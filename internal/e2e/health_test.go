package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"lobby/internal/health"
	"lobby/internal/pki"
	"lobby/internal/store/pgtest"
	"lobby/internal/syncbuf"
)

// healthNode starts a `lobby server` process of a cluster on PostgreSQL,
// as an operator does, and waits until it is ready.
func healthNode(tb testing.TB, name string, site int, pgURL, key string) *node {
	tb.Helper()
	return launchNode(tb, name, []string{"LOBBY_CLUSTER_KEY=" + key},
		"--listen", "127.0.0.1:0", "--data", tb.TempDir(), "--name", name, "--postgres", pgURL, "--site-id", fmt.Sprint(site))
}

// lobbyHealth runs `lobby health` with env and returns its exit code and
// output.
func lobbyHealth(tb testing.TB, env []string, args ...string) (int, string, string) {
	tb.Helper()
	cmd := exec.Command(lobbyBin, append([]string{"health"}, args...)...)
	cmd.Env = append(cleanEnv(), env...)
	var out, errb syncbuf.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := exitCode(err)
	if code < 0 {
		tb.Fatalf("run lobby health: %v", err)
	}
	return code, out.String(), errb.String()
}

// TestHealthOfACluster runs the real `lobby health` against two real
// `lobby server` processes on one real PostgreSQL: healthy, it exits 0
// with every check passed, as JSON, a table and an HTML page; with the
// wrong cluster key, or once a node is killed, it exits 1 and names the
// failure, its cause and its fix.
func TestHealthOfACluster(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	key := pki.NewClusterKeyString()
	healthNode(t, "node-a", 1, url, key)
	b := healthNode(t, "node-b", 2, url, key)
	env := []string{"LOBBY_POSTGRES=" + url, "LOBBY_CLUSTER_KEY=" + key}

	var rep health.Report
	var out string
	eventually(t, "lobby health --json passes, with both nodes probing each other", func() bool {
		var code int
		code, out, _ = lobbyHealth(t, env, "--json")
		rep = health.Report{}
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("lobby health --json printed %q: %v", out, err)
		}
		_, ab := rep.Check("reach/1-2")
		_, ba := rep.Check("reach/2-1")
		return code == 0 && ab && ba && rep.Status == health.OK
	})
	for _, id := range []string{"store", "cluster-key", "versions", "schema", "leader", "node/1", "node/2", "ready/2", "store/2",
		"clock/1", "clock/2", "cert/1", "cert/2", "port/1", "port/2", "reach/1-1", "reach/2-2"} {
		if c, ok := rep.Check(id); !ok || c.Status != health.OK {
			t.Errorf("check %s = %+v (present %v), want ok", id, c, ok)
		}
	}
	if len(rep.Nodes) != 2 || !rep.Nodes[0].Alive || !rep.Nodes[1].Alive || rep.Nodes[1].Name != "node-b" {
		t.Errorf("nodes = %+v, want node-a and node-b alive", rep.Nodes)
	}

	page := filepath.Join(t.TempDir(), "health.html")
	code, table, _ := lobbyHealth(t, env, "--html", page)
	html, err := os.ReadFile(page)
	if code != 0 || !strings.HasPrefix(table, "Cluster health: OK") || err != nil || !strings.Contains(string(html), "node 2 (node-b)") {
		t.Errorf("lobby health --html: exit %d\n%s\nHTML (%v): %.200s", code, table, err, html)
	}

	// Another cluster's key is its own failure.
	code, out, _ = lobbyHealth(t, []string{"LOBBY_POSTGRES=" + url, "LOBBY_CLUSTER_KEY=" + pki.NewClusterKeyString()}, "--json")
	rep = health.Report{}
	_ = json.Unmarshal([]byte(out), &rep)
	if c, _ := rep.Check("cluster-key"); code != 1 || c.Status != health.Fail || !strings.Contains(c.Detail, "does not unseal") {
		t.Errorf("with another key: exit %d, cluster-key %+v", code, c)
	}

	// Node b dies without a word: its heartbeat stands still, and the
	// check fails naming it.
	if err := syscall.Kill(-b.p.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	b.p.wait(t)
	var c health.Check
	eventually(t, "lobby health fails, naming the dead node", func() bool {
		code, out, _ = lobbyHealth(t, env, "--json")
		rep = health.Report{}
		_ = json.Unmarshal([]byte(out), &rep)
		c, _ = rep.Check("node/2")
		return code == 1 && c.Status == health.Fail
	})
	if !strings.Contains(c.Detail, "node 2 (node-b) is dead: no heartbeat for") || !strings.Contains(c.Fix, "lobby nodes remove 2") {
		t.Errorf("node/2 = %+v, want it named dead, with the fix", c)
	}
	if c, _ := rep.Check("node/1"); c.Status != health.OK {
		t.Errorf("node/1 = %+v: the live node is fine", c)
	}
	code, table, _ = lobbyHealth(t, env)
	t.Logf("lobby health with a dead node:\n%s", table)
	if code != 1 || !strings.HasPrefix(table, "Cluster health: FAIL") || !strings.Contains(table, "node 2 (node-b) is dead") || !strings.Contains(table, "cause:") {
		t.Errorf("the table of a cluster with a dead node: exit %d\n%s", code, table)
	}
}
