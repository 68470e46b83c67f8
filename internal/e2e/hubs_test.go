package e2e

import (
	"context"
	"net/http"
	"strconv"
	"syscall"
	"testing"

	"lobby/internal/pki"
	"lobby/internal/store/pgtest"
)

// TestHubs runs two nodes on one real PostgreSQL (node-a, site 1, and
// node-b, site 2) and one agent with a real Xvnc desktop, linked to
// node-b (its hubs: node-b, then node-a). A user connects through node-a
// and gets the console over the node link; node-b dies (SIGKILL), the
// agent moves to node-a, node-b comes back, and the user's console
// through node-b crosses the node link the other way.
func TestHubs(t *testing.T) {
	t.Parallel()
	requireDesktops(t)
	pg, key := pgtest.URL(t), pki.NewClusterKeyString()
	env := []string{"LOBBY_CLUSTER_KEY=" + key}
	nodeArgs := func(site int) []string { return []string{"--postgres", pg, "--site-id", strconv.Itoa(site)} }
	a := startNodeWith(t, "node-a", env, nodeArgs(1)...)
	b := startNodeWith(t, "node-b", env, nodeArgs(2)...)
	waitNodeLink(t, a, "node-b", 2)
	waitNodeLink(t, b, "node-a", 1)

	dir := agentDir(t)
	ag := startAgent(t, "host-h", dir, a.token(t, 1, "1h").Token, b.url, a.url)
	eventually(t, "host-h is linked to node-b, not node-a", func() bool {
		if ag.exited() {
			t.Fatalf("the agent exited: %v\n%s", ag.err, ag.stderr.String())
		}
		_, onB := b.linkUp(t, "host-h")
		_, onA := a.linkUp(t, "host-h")
		return onB && !onA
	})
	a.admin.want(http.StatusCreated, "POST", "/api/v1/pools", map[string]any{"name": "hubs", "min_size": 1, "max_size": 1, "min_free": 1}, nil)
	a.admin.want(http.StatusCreated, "POST", "/api/v1/policies", map[string]any{"name": "hubs", "pools": []string{"hubs"}, "groups": []string{"hubs"}}, nil)
	a.admin.want(http.StatusCreated, "POST", "/api/v1/users", map[string]any{"username": "carol", "password": "carol password", "groups": []string{"hubs"}, "role": "user"}, nil)
	eventually(t, "the pool's desktop is running", func() bool {
		ds := a.desktops(t, "?pool=hubs")
		return len(ds) == 1 && ds[0].Power == "running"
	})

	t.Log("step: carol connects through node-a; the desktop's agent is linked to node-b")
	onA := a.login(t, "carol", "carol password")
	d := consoleSize(t, a.url, onA, "hubs", 1280, 800)

	t.Log("step: node-b is killed; the agent moves to node-a")
	if err := b.p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	b.p.wait(t)
	eventually(t, "host-h is linked to node-a", func() bool { _, up := a.linkUp(t, "host-h"); return up })
	eventually(t, "the host is recorded up on site 1", func() bool {
		h := hostRecord(t, a, "host-h")
		return h.State == "up" && h.SiteID == 1
	})
	if got := consoleSize(t, a.url, onA, "hubs", 1280, 800); got.ID != d.ID {
		t.Errorf("after the move carol got desktop %s, want %s", got.Name, d.Name)
	}

	t.Log("step: node-b starts again; carol connects through it")
	b = startNodeWith(t, "node-b", env, nodeArgs(2)...)
	waitNodeLink(t, a, "node-b", 2)
	waitNodeLink(t, b, "node-a", 1)
	if _, up := b.linkUp(t, "host-h"); up {
		t.Fatal("host-h linked to node-b again, want it to stay on node-a")
	}
	onB := b.login(t, "carol", "carol password")
	if got := consoleSize(t, b.url, onB, "hubs", 1280, 800); got.ID != d.ID {
		t.Errorf("through node-b carol got desktop %s, want %s", got.Name, d.Name)
	}
}

// apiNodeLink is what the test reads of a node link in GET /api/v1/links.
type apiNodeLink struct {
	Kind       string  `json:"kind"`
	State      string  `json:"state"`
	Peer       string  `json:"peer"`
	PeerSiteID int     `json:"peer_site_id"`
	RTTMillis  float64 `json:"rtt_ms"`
	LastError  string  `json:"last_error"`
}

// waitNodeLink waits until n lists its link to the node peer (of site) up,
// with a round trip measured.
func waitNodeLink(t *testing.T, n *node, peer string, site int) {
	t.Helper()
	var last []apiNodeLink
	eventually(t, n.name+" lists its link to "+peer+" up", func() bool {
		if n.p.exited() {
			t.Fatalf("node %s exited: %v\n%s", n.name, n.p.err, n.p.stderr.String())
		}
		var l struct{ Items []apiNodeLink }
		n.admin.want(http.StatusOK, "GET", "/api/v1/links", nil, &l)
		last = l.Items
		for _, x := range l.Items {
			if x.Kind == "node" && x.Peer == peer && x.PeerSiteID == site && x.State == "up" && x.RTTMillis > 0 {
				return true
			}
		}
		return false
	})
	t.Logf("%s's node links: %+v", n.name, last)
}

// apiHostRecord is what the test reads of a host in GET /api/v1/hosts.
type apiHostRecord struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	State  string `json:"state"`
	SiteID int    `json:"site_id"`
}

func hostRecord(t *testing.T, n *node, name string) apiHostRecord {
	t.Helper()
	var l struct{ Items []apiHostRecord }
	n.admin.want(http.StatusOK, "GET", "/api/v1/hosts", nil, &l)
	for _, h := range l.Items {
		if h.Name == name {
			return h
		}
	}
	t.Fatalf("no host %s in %+v", name, l.Items)
	return apiHostRecord{}
}

// consoleSize connects user to its desktop in pool through the node at
// base, reads the console's ServerInit and a framebuffer update, and
// checks the desktop's screen size.
func consoleSize(t *testing.T, base string, user *client, pool string, w, h uint16) apiDesktop {
	t.Helper()
	d, vncURL := connect(t, user, pool)
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	si, err := viewConsole(ctx, base, vncURL)
	if err != nil {
		t.Fatalf("console of desktop %s through %s: %v", d.Name, base, err)
	}
	if si.Width != w || si.Height != h {
		t.Fatalf("console of desktop %s through %s: ServerInit %dx%d, want the desktop's %dx%d", d.Name, base, si.Width, si.Height, w, h)
	}
	t.Logf("console of %s through %s: %dx%d, framebuffer update received", d.Name, base, si.Width, si.Height)
	return d
}
