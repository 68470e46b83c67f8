package e2e

import (
	"net/http"
	"strings"
	"testing"
)

// TestAgents runs a node and two host agents as processes, each agent
// with two hubs: a TCP proxy to the node first (the listener the test
// kills), then the node's own address. Desktops are real Xvnc displays on
// the agents' hosts, reached through the gateway and the links. The steps
// run in order on one cluster, each starting from where the last ended.
func TestAgents(t *testing.T) {
	t.Parallel()
	requireDesktops(t)
	c := startCluster(t)
	c.consoleOnEachHost(t)
	t.Log("step: the first hub's listener is killed")
	c.killFirstHub(t)
	t.Log("step: host-a's agent is restarted")
	c.restartAgent(t, "host-a")
	t.Log("step: host-b is revoked")
	c.revoke(t, "host-b")
}

var hostNames = []string{"host-a", "host-b"}

// cluster is TestAgents' node, proxy and agents, and what the steps
// learned, by host name.
type cluster struct {
	n       *node
	px      *proxy
	dirs    map[string]string
	agents  map[string]*process
	hosts   map[string]apiHost
	first   map[string]apiLink    // each host's link before the proxy died
	holder  map[string]*client    // the user whose desktop is on the host
	desktop map[string]apiDesktop // that desktop
	byID    map[string]string     // host ID → name
}

// startCluster starts the node and both agents, joined with one token of
// two uses, and waits until both hosts are linked through the proxy.
func startCluster(t *testing.T) *cluster {
	c := &cluster{n: startNode(t, "hub1.test"), dirs: map[string]string{}, agents: map[string]*process{},
		first: map[string]apiLink{}, holder: map[string]*client{}, desktop: map[string]apiDesktop{}, byID: map[string]string{}}
	c.px = newProxy(t, strings.TrimPrefix(c.n.url, "http://"))
	tok := c.n.token(t, 2, "1h")
	for _, name := range hostNames {
		c.dirs[name] = agentDir(t)
		c.agents[name] = startAgent(t, name, c.dirs[name], tok.Token, c.px.URL(), c.n.url)
	}
	eventually(t, "both hosts are listed, up", func() bool {
		for name, a := range c.agents {
			if a.exited() {
				t.Fatalf("agent %s exited: %v\n%s", name, a.err, a.stderr.String())
			}
		}
		c.hosts = c.n.hosts(t)
		return c.hosts["host-a"].State == "up" && c.hosts["host-b"].State == "up"
	})
	for _, name := range hostNames {
		c.byID[c.hosts[name].ID] = name
		l, ok := c.n.linkUp(t, name)
		if !ok {
			t.Fatalf("host %s is up but GET /api/v1/links has no link of it: %+v", name, c.n.links(t))
		}
		if l.Hub != "hub1.test" || l.HostID != c.hosts[name].ID || !c.px.carries(l.Address) {
			t.Errorf("link of %s = %+v, want it on hub1.test through the first hub (the proxy)", name, l)
		}
		c.first[name] = l
		if !strings.Contains(c.agents[name].stdout.String(), "Joined the cluster as host "+name) {
			t.Errorf("agent %s did not say it joined: %s", name, c.agents[name].stdout.String())
		}
	}
	return c
}

// consoleOnEachHost makes a pool of two desktops once both hosts are
// linked (one lands on each) and a policy offering it to alice and bob;
// each connects, gets a desktop on another host, and sees its
// framebuffer through node ⇄ link ⇄ agent.
func (c *cluster) consoleOnEachHost(t *testing.T) {
	n := c.n
	n.admin.want(http.StatusCreated, "POST", "/api/v1/pools", map[string]any{"name": "e2e", "min_size": 2, "max_size": 2, "min_free": 2}, nil)
	n.admin.want(http.StatusCreated, "POST", "/api/v1/policies", map[string]any{"name": "e2e", "pools": []string{"e2e"}, "groups": []string{"e2e"}}, nil)
	eventually(t, "a running desktop of the pool on each host", func() bool {
		on := map[string]bool{}
		for _, d := range n.desktops(t, "?pool=e2e") {
			on[c.byID[d.HostID]] = on[c.byID[d.HostID]] || d.Power == "running"
		}
		return on["host-a"] && on["host-b"]
	})
	for _, user := range []string{"alice", "bob"} {
		n.admin.want(http.StatusCreated, "POST", "/api/v1/users", map[string]any{"username": user, "password": user + " password", "groups": []string{"e2e"}, "role": "user"}, nil)
		u := n.login(t, user, user+" password")
		d := console(t, n.url, u, "e2e")
		c.holder[c.byID[d.HostID]], c.desktop[c.byID[d.HostID]] = u, d
	}
	if len(c.holder) != 2 {
		t.Fatalf("alice and bob got desktops %+v, want one on each host", c.desktop)
	}
}

// killFirstHub closes the proxy and its connections: both agents link
// again through their second hub, and consoles work again.
func (c *cluster) killFirstHub(t *testing.T) {
	c.px.Close()
	eventually(t, "both hosts are linked again through the second hub", func() bool {
		for _, name := range hostNames {
			l, ok := c.n.linkUp(t, name)
			if !ok || !l.Since.After(c.first[name].Since) || c.px.carries(l.Address) {
				return false
			}
		}
		return true
	})
	for _, name := range hostNames {
		// The node can count the link before the agent logs it.
		logged := func() bool {
			return strings.Contains(c.agents[name].stderr.String(), "hub="+c.n.url+" hub_name=hub1.test")
		}
		eventually(t, "agent "+name+" logs its link to "+c.n.url, logged)
		console(t, c.n.url, c.holder[name], "e2e")
	}
}

// restartAgent stops an agent with SIGTERM and starts it again without
// --join: its desktop's Xvnc keeps running throughout and is re-adopted,
// and its console works again.
func (c *cluster) restartAgent(t *testing.T, name string) {
	n, d := c.n, c.desktop[name]
	pid, start := xvncProcess(t, c.dirs[name], d.Name)
	if !alive(pid, start) {
		t.Fatalf("the Xvnc of %s (pid %d) is not running before the restart", d.Name, pid)
	}
	before, _ := n.linkUp(t, name)
	if code := c.agents[name].terminate(t); code != 0 {
		t.Errorf("agent %s exited with %d on SIGTERM, want 0:\n%s", name, code, c.agents[name].stderr.String())
	}
	eventually(t, "the node sees the link of "+name+" gone", func() bool { _, up := n.linkUp(t, name); return !up })
	if !alive(pid, start) {
		t.Fatalf("the Xvnc of %s (pid %d) stopped with its agent", d.Name, pid)
	}
	c.agents[name] = startAgent(t, name, c.dirs[name], "", c.px.URL(), n.url)
	eventually(t, name+" is linked again", func() bool {
		l, ok := n.linkUp(t, name)
		return ok && l.Since.After(before.Since)
	})
	eventually(t, "both desktops of the pool are running, "+d.Name+" among them", func() bool {
		running := map[string]bool{}
		for _, x := range n.desktops(t, "?pool=e2e") {
			running[x.ID] = x.Power == "running"
		}
		return len(running) == 2 && running[d.ID]
	})
	if p, s := xvncProcess(t, c.dirs[name], d.Name); p != pid || s != start || !alive(pid, start) {
		t.Errorf("the Xvnc of %s is pid %d (alive: %v), want the same process %d as before the restart", d.Name, p, alive(p, s), pid)
	}
	if hs := n.hosts(t); len(hs) != 2 || hs[name].ID != c.hosts[name].ID {
		t.Errorf("hosts after the restart = %+v, want the same two", hs)
	}
	if got := console(t, n.url, c.holder[name], "e2e"); got.ID != d.ID {
		t.Errorf("after the restart the user of %s got desktop %s, want %s again", name, got.Name, d.Name)
	}
}

// revoke revokes a host through the API: its agent is cut off and exits
// non-zero saying so; the other host is untouched.
func (c *cluster) revoke(t *testing.T, name string) {
	var h apiHost
	c.n.admin.want(http.StatusOK, "POST", "/api/v1/hosts/"+c.hosts[name].ID+"/actions", map[string]string{"action": "revoke"}, &h)
	if !h.Revoked {
		t.Errorf("revoke answered %+v, want the host revoked", h)
	}
	code := c.agents[name].wait(t)
	last := lastLine(c.agents[name].stderr.String())
	t.Logf("revoked agent %s exited with %d: %s", name, code, last)
	if code == 0 || !strings.Contains(last, "revoked") {
		t.Errorf("the revoked agent exited with %d and last said %q, want a non-zero exit saying it was revoked", code, last)
	}
	eventually(t, "the revoked host is no longer linked", func() bool { _, up := c.n.linkUp(t, name); return !up })
	for _, other := range hostNames {
		if other != name {
			console(t, c.n.url, c.holder[other], "e2e")
		}
	}
}

// lastLine is the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
