package server

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"lobby/internal/agent"
	"lobby/internal/linkproto"
	"lobby/internal/pki"
	"lobby/internal/provider"
	"lobby/internal/provider/memory"
	"lobby/internal/store/pgtest"
)

// TestJobTakeoverAcrossNodes: two nodes on one PostgreSQL and a host agent
// linked to node A (node B is its second hub). A job runs on A and blocks
// on the host; A dies (its database connections and its listener cut
// without a goodbye). B takes the lead, takes the job over and resends
// its command; the agent answers it from the first run, so the host
// starts the desktop once, and the job completes on B.
func TestJobTakeoverAcrossNodes(t *testing.T) {
	t.Parallel()
	dbURL, key := pgtest.URL(t), pki.NewClusterKeyString()
	proxy := newCutProxy(t, dbURL)
	_, baseA, stopA := clusterNode(t, 1, "node-a", proxy.url(t, dbURL), key, 0)
	_, baseB, _ := clusterNode(t, 2, "node-b", dbURL, key, 0)
	admin := login(t, baseA, "admin", adminPW)

	prov := newSlowHost(t)
	if _, err := prov.Create(context.Background(), provider.Spec{Name: "desk-1"}); err != nil {
		t.Fatal(err)
	}
	runAgent(t, admin, "host-t", prov, baseA, baseB)

	var desktops list
	eventually(t, "the agent reports its desktop through node A", func() bool {
		admin.want(200, "GET", "/api/v1/desktops", nil, &desktops)
		return len(desktops.Items) == 1
	})
	var started struct{ Job map[string]any }
	admin.want(202, "POST", "/api/v1/desktops/"+desktops.Items[0]["id"].(string)+"/actions", map[string]string{"action": "start"}, &started)
	jobID := started.Job["id"].(string)
	if started.Job["site"] != float64(1) {
		t.Fatalf("job = %+v, want it owned by site 1 (node A holds the host's link)", started.Job)
	}
	gate := prov.next(t) // node A's start is on the host

	// Node A dies: no more database, no more links, no goodbye.
	proxy.cut()
	stopA()

	adminB := login(t, baseB, "admin", adminPW)
	var job map[string]any
	eventually(t, "node B takes the job over and runs it", func() bool {
		adminB.want(200, "GET", "/api/v1/jobs/"+jobID, nil, &job)
		return (job["state"] == "running" || job["state"] == "completed") && job["site_id"] == float64(2)
	})
	if to, _ := job["taken_over"].([]any); len(to) != 1 || to[0].(map[string]any)["from_site"] != float64(1) {
		t.Fatalf("job = %+v, want one takeover from site 1", job)
	}
	close(gate) // the host finishes the one start
	eventually(t, "node B completes the job", func() bool {
		adminB.want(200, "GET", "/api/v1/jobs/"+jobID, nil, &job)
		return job["state"] == "completed"
	})
	if job["site_id"] != float64(2) || job["result"] != "running" {
		t.Fatalf("job = %+v, want completed on site 2 with the desktop running", job)
	}
	if n := prov.starts.Load(); n != 1 {
		t.Fatalf("the host started the desktop %d times, want once", n)
	}
	var audit list
	adminB.want(200, "GET", "/api/v1/audit?q=jobs.takeover", nil, &audit)
	if len(audit.Items) != 1 || !strings.Contains(audit.Items[0]["detail"].(string), "job "+jobID+" to site 2") {
		t.Fatalf("audit = %+v, want the takeover of job %s to site 2", audit.Items, jobID)
	}
}

// clusterNode starts a node of a cluster on PostgreSQL (takeover is its
// --job-takeover; 0 the default); stop kills it as a crash would when the
// database is already cut (nothing graceful gets through).
func clusterNode(t *testing.T, site int, name, dbURL, key string, takeover time.Duration) (*Server, string, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s, err := New(ctx, Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), PlainHTTP: true, AdminPassword: adminPW,
		Postgres: dbURL, ClusterKey: key, SiteID: site, Name: name, HashSlots: 2, JobTakeover: takeover,
		Logger: testLogger(t)})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			s.Hub.Close()
			s.listener.Close()
			cancel()
			<-done
			s.Close()
		})
	}
	t.Cleanup(stop)
	return s, s.URL(), stop
}

// runAgent joins a host agent with a token admin issues and runs it until
// the test ends, linked to the hubs in their order.
func runAgent(t *testing.T, admin *apiClient, name string, prov provider.Provider, hubs ...string) {
	t.Helper()
	var tok struct{ Token string }
	admin.want(201, "POST", "/api/v1/tokens", map[string]any{"uses": 1, "expires_in": "1h"}, &tok)
	settings := make([]linkproto.HubSetting, len(hubs))
	for i, u := range hubs {
		settings[i] = linkproto.HubSetting{URL: u, Ping: linkproto.Duration(500 * time.Millisecond), AutoConnect: true}
	}
	ag, err := agent.New(agent.Config{Name: name, DataDir: t.TempDir(), Provider: prov, Release: "agent-test",
		Logger: slog.New(slog.DiscardHandler), CheckEvery: 50 * time.Millisecond,
		BackoffMin: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond, Hubs: settings})
	if err != nil {
		t.Fatal(err)
	}
	if err := ag.Join(context.Background(), tok.Token); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = ag.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

// slowHost is a memory provider whose first start waits for the test: a
// host that is slow to start a desktop. It counts the starts it runs.
type slowHost struct {
	*memory.Provider
	gates  chan chan struct{}
	starts atomic.Int32
}

func newSlowHost(t *testing.T) *slowHost {
	p, err := memory.New(memory.Config{Width: 16, Height: 16})
	if err != nil {
		t.Fatal(err)
	}
	return &slowHost{Provider: p, gates: make(chan chan struct{}, 1)}
}

func (h *slowHost) Start(ctx context.Context, name string) (provider.Desktop, error) {
	if h.starts.Add(1) > 1 {
		return h.Provider.Start(ctx, name)
	}
	gate := make(chan struct{})
	h.gates <- gate
	select {
	case <-gate:
	case <-ctx.Done():
		return provider.Desktop{}, ctx.Err()
	}
	return h.Provider.Start(ctx, name)
}

func (h *slowHost) next(t *testing.T) chan struct{} {
	t.Helper()
	select {
	case g := <-h.gates:
		return g
	case <-time.After(60 * time.Second):
		t.Fatal("no start reached the host")
		return nil
	}
}

// cutProxy forwards TCP to PostgreSQL until cut, which closes its
// listener and every connection: the node behind it loses the database
// at once, as a dead machine would.
type cutProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
	isCut  bool
}

func newCutProxy(t *testing.T, dbURL string) *cutProxy {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: u.Host}
	go p.serve()
	t.Cleanup(p.cut)
	return p
}

// url is dbURL through the proxy.
func (p *cutProxy) url(t *testing.T, dbURL string) string {
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = p.ln.Addr().String()
	return u.String()
}

func (p *cutProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		u, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		if p.isCut {
			p.mu.Unlock()
			c.Close()
			u.Close()
			return
		}
		p.conns = append(p.conns, c, u)
		p.mu.Unlock()
		go func() { _, _ = io.Copy(u, c); u.Close() }()
		go func() { _, _ = io.Copy(c, u); c.Close() }()
	}
}

func (p *cutProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.isCut = true
	p.ln.Close()
	for _, c := range p.conns {
		c.Close()
	}
}
