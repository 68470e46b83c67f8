package link_test

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"lobby/internal/agent"
	"lobby/internal/hostconn"
	"lobby/internal/link"
	"lobby/internal/linkproto"
	"lobby/internal/lobby"
	"lobby/internal/pki"
	"lobby/internal/provider"
	"lobby/internal/provider/memory"
	"lobby/internal/store"
)

// node is a hub on a real SQLite store, served over HTTP (as lobby dev
// does) or HTTPS.
type node struct {
	st    store.Store
	ca    *pki.CA
	hub   *link.Hub
	hosts *hostconn.Registry
	srv   *httptest.Server
}

func newNode(t *testing.T, name string, https bool) *node {
	t.Helper()
	c := newCluster(t)
	st, ca := c.st, c.ca
	cert, err := ca.IssueTLS(pki.Identity{Kind: pki.KindNode, ID: "1", Name: name}, time.Now(), pki.NodeLifetime)
	if err != nil {
		t.Fatal(err)
	}
	n := &node{st: st, ca: ca, hosts: hostconn.NewRegistry()}
	n.hub = &link.Hub{Store: st, CA: ca, Cert: cert, Name: name, SiteID: 1, Hosts: n.hosts, Release: "test", Logger: slog.New(slog.DiscardHandler)}
	mux := http.NewServeMux()
	mux.Handle(linkproto.Path, n.hub)
	if https {
		n.srv = httptest.NewTLSServer(mux)
	} else {
		n.srv = httptest.NewServer(mux)
	}
	t.Cleanup(func() { n.hub.Close(); n.srv.Close() })
	return n
}

// token stores a join token and returns its string.
func (n *node) token(t testing.TB, uses int, expires time.Time) string {
	t.Helper()
	secret := lobby.NewID("sec")
	sum := sha256.Sum256([]byte(secret))
	jt := &store.JoinToken{Hash: hex.EncodeToString(sum[:]), CreatedBy: "admin", Expires: expires, MaxUses: uses}
	if err := n.st.CreateJoinToken(context.Background(), jt); err != nil {
		t.Fatal(err)
	}
	return linkproto.JoinToken{ID: jt.ID, Secret: secret, CAFingerprint: n.ca.Fingerprint()}.String()
}

func newAgent(t testing.TB, name string, p *memory.Provider, hubs ...linkproto.HubSetting) *agent.Agent {
	t.Helper()
	for i := range hubs {
		hubs[i].AutoConnect = true
		if hubs[i].Ping == 0 {
			hubs[i].Ping = linkproto.Duration(200 * time.Millisecond)
		}
	}
	a, err := agent.New(agent.Config{Name: name, DataDir: t.TempDir(), Hubs: hubs, Provider: p, Release: "test",
		Logger:     slog.New(slog.DiscardHandler),
		CheckEvery: 50 * time.Millisecond, BackoffMin: 20 * time.Millisecond, BackoffMax: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// run runs the agent until the test ends; the returned channel gets
// Run's result.
func run(t testing.TB, a *agent.Agent) <-chan error {
	ctx, cancel := context.WithCancel(context.Background())
	done, stopped := make(chan error, 1), make(chan struct{})
	go func() { done <- a.Run(ctx); close(stopped) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-stopped:
		case <-time.After(10 * time.Second):
			t.Error("agent did not stop")
		}
	})
	return done
}

func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func memProvider(t testing.TB) *memory.Provider {
	p, err := memory.New(memory.Config{Width: 64, Height: 48})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestJoinLinkAndServe(t *testing.T) {
	t.Parallel()
	for _, https := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain-http", true: "https"}[https], func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			n := newNode(t, "hub1.test", https)
			p := memProvider(t)
			if _, err := p.Create(ctx, provider.Spec{Name: "old-1"}); err != nil {
				t.Fatal(err)
			}
			if _, err := p.Start(ctx, "old-1"); err != nil {
				t.Fatal(err)
			}
			a := newAgent(t, "host-a", p, linkproto.HubSetting{URL: n.srv.URL, NameMask: "hub1.*"})
			if err := a.Join(ctx, n.token(t, 1, time.Now().Add(time.Hour))); err != nil {
				t.Fatal(err)
			}
			run(t, a)
			eventually(t, "the host is linked", func() bool { return n.hub.Linked(a.HostID()) })

			// The desktop the host already had is discovered.
			eventually(t, "old-1 is recorded as running", func() bool {
				d, err := n.st.GetDesktopByName(ctx, a.HostID(), "old-1")
				return err == nil && d.Power == lobby.PowerRunning
			})
			// The report's metrics are recorded after its desktops.
			var h *lobby.Host
			eventually(t, "the host's metrics are recorded", func() bool {
				var err error
				h, err = n.st.GetHost(ctx, a.HostID())
				return err == nil && h.MemTotal > 0
			})
			if h.State != lobby.HostUp || h.Name != "host-a" || h.CertSerial == "" || h.MemTotal == 0 {
				t.Errorf("host after link = %+v, want up, named host-a, with a certificate serial and memory", h)
			}
			ls := n.hub.Links()
			if len(ls) != 1 || ls[0].State != "up" || ls[0].Peer != "host-a" || ls[0].Hub != "hub1.test" || len(ls[0].Upstreams) != 1 || ls[0].Upstreams[0].NameMask != "hub1.*" {
				t.Errorf("links = %+v, want host-a up on hub1.test with its upstream settings", ls)
			}

			// Commands run on the host; a repeated (ID, Op) is answered
			// from memory instead of run twice.
			conn, err := n.hosts.Get(a.HostID())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := conn.Do(ctx, hostconn.Command{ID: "job-1", Op: hostconn.OpCreate, Desktop: "new-1"}); err != nil {
				t.Fatal(err)
			}
			if _, err := conn.Do(ctx, hostconn.Command{ID: "job-1", Op: hostconn.OpCreate, Desktop: "new-1"}); err != nil {
				t.Errorf("the same create resent: %v, want the remembered success", err)
			}
			if _, err := conn.Do(ctx, hostconn.Command{ID: "job-2", Op: hostconn.OpCreate, Desktop: "new-1"}); err == nil {
				t.Error("a second create of new-1 under another ID succeeded, want the provider's refusal")
			}
			d, err := conn.Do(ctx, hostconn.Command{ID: "job-1", Op: hostconn.OpStart, Desktop: "new-1"})
			if err != nil || d.Power != lobby.PowerRunning {
				t.Fatalf("start new-1 = %+v, %v", d, err)
			}
			if _, err := conn.Do(ctx, hostconn.Command{ID: "job-3", Op: hostconn.OpGet, Desktop: "missing"}); lobby.ErrorKind(err) != lobby.KindNotFound {
				t.Errorf("get of a missing desktop: %v, want not_found across the link", err)
			}

			// A console stream crosses the link already authenticated:
			// ClientInit in, ServerInit (the framebuffer size) out.
			c, err := conn.DialConsole(ctx, "new-1")
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Write([]byte{1}); err != nil {
				t.Fatal(err)
			}
			var init [4]byte
			if _, err := io.ReadFull(c, init[:]); err != nil {
				t.Fatal(err)
			}
			if w, h := int(init[0])<<8|int(init[1]), int(init[2])<<8|int(init[3]); w != 64 || h != 48 {
				t.Errorf("ServerInit size %dx%d, want 64x48", w, h)
			}
			if _, err := conn.DialConsole(ctx, "missing"); err == nil {
				t.Error("console of a missing desktop: no error")
			}
		})
	}
}

func TestRevokedHostIsCutOff(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	n := newNode(t, "hub1.test", false)
	a := newAgent(t, "host-r", memProvider(t), linkproto.HubSetting{URL: n.srv.URL})
	if err := a.Join(ctx, n.token(t, 1, time.Now().Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	done := run(t, a)
	eventually(t, "the host is linked", func() bool { return n.hub.Linked(a.HostID()) })
	if err := n.st.RevokeHost(ctx, a.HostID()); err != nil {
		t.Fatal(err)
	}
	if !n.hub.Cut(a.HostID(), "revoked") {
		t.Fatal("Cut found no link")
	}
	select {
	case err := <-done:
		var r *agent.RefusedError
		if !errors.As(err, &r) || r.Code != linkproto.CodeRevoked || !strings.Contains(err.Error(), "revoked") {
			t.Fatalf("agent ended with %v, want a revoked refusal", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the revoked agent kept running")
	}
	if n.hub.Linked(a.HostID()) {
		t.Error("the revoked host is still linked")
	}
}

func TestJoinRefusals(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	n := newNode(t, "hub1.test", false)
	other := newNode(t, "hub1.other", false)
	used := n.token(t, 1, time.Now().Add(time.Hour))
	if err := newAgent(t, "host-u", memProvider(t), linkproto.HubSetting{URL: n.srv.URL}).Join(ctx, used); err != nil {
		t.Fatal(err)
	}
	valid := n.token(t, 5, time.Now().Add(time.Hour))
	jt, _ := linkproto.ParseJoinToken(valid)
	wrongSecret := linkproto.JoinToken{ID: jt.ID, Secret: "guessed", CAFingerprint: jt.CAFingerprint}.String()
	tests := []struct {
		name, token, hub, host string
		code                   string // RefusedError code, or "" for the error text
		want                   string
	}{
		{"expired", n.token(t, 1, time.Now().Add(-time.Minute)), n.srv.URL, "host-1", linkproto.CodeExpiredToken, "expired"},
		{"used up", used, n.srv.URL, "host-2", linkproto.CodeBadToken, "already used"},
		{"wrong secret", wrongSecret, n.srv.URL, "host-3", linkproto.CodeBadToken, "not valid"},
		{"another cluster's hub", valid, other.srv.URL, "host-4", "", "fingerprint in the join token"},
		{"malformed", "LJ1.nope", n.srv.URL, "host-5", "", "malformed"},
		{"name taken", valid, n.srv.URL, "host-u", linkproto.CodeNameTaken, "already joined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAgent(t, tt.host, memProvider(t), linkproto.HubSetting{URL: tt.hub})
			err := a.Join(ctx, tt.token)
			var r *agent.RefusedError
			switch {
			case err == nil:
				t.Fatal("joined, want a refusal")
			case tt.code != "" && (!errors.As(err, &r) || r.Code != tt.code):
				t.Fatalf("err = %v, want refusal %s", err, tt.code)
			case !strings.Contains(err.Error(), tt.want):
				t.Fatalf("err = %q, want it to say %q", err, tt.want)
			}
			if a.Joined() {
				t.Error("a refused agent kept an identity")
			}
		})
	}
	// Nothing partial: the refusals created no host and used no token.
	hs, err := n.st.ListHosts(ctx, store.ListOptions{})
	if err != nil || len(hs) != 1 {
		t.Errorf("hosts after refusals = %v, %v; want only host-u", hs, err)
	}
	if got, _ := n.st.GetJoinToken(ctx, jt.ID); got == nil || got.Uses != 0 {
		t.Errorf("token after refused joins = %+v, want no use counted", got)
	}
}

func TestLinkRefusals(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	n := newNode(t, "hub1.test", false)

	t.Run("name mask", func(t *testing.T) {
		a := newAgent(t, "host-m", memProvider(t), linkproto.HubSetting{URL: n.srv.URL})
		if err := a.Join(ctx, n.token(t, 1, time.Now().Add(time.Hour))); err != nil {
			t.Fatal(err)
		}
		// The same identity, now only accepting hubs named hub2.*.
		b, err := agent.New(agent.Config{Name: "host-m", DataDir: a.DataDir(), Provider: memProvider(t), Logger: slog.New(slog.DiscardHandler),
			Hubs: []linkproto.HubSetting{{URL: n.srv.URL, NameMask: "hub2.*", AutoConnect: true}}, BackoffMin: 20 * time.Millisecond, BackoffMax: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		run(t, b)
		eventually(t, "the agent reports the mask mismatch", func() bool {
			return strings.Contains(b.Status().LastError, `is named "hub1.test", which does not match "hub2.*"`)
		})
		if n.hub.Linked(b.HostID()) {
			t.Error("linked to a hub outside the name mask")
		}
	})

	t.Run("incompatible protocol", func(t *testing.T) {
		w := rawHello(t, n, nil, linkproto.Hello{Proto: linkproto.Version + 1, Kind: linkproto.KindLeaf, Name: "future"})
		if w.Error == nil || w.Error.Code != linkproto.CodeIncompatible || !strings.Contains(w.Error.Message, fmt.Sprintf("version %d", linkproto.Version+1)) || !strings.Contains(w.Error.Message, fmt.Sprintf("versions %d to %d", linkproto.MinVersion, linkproto.Version)) {
			t.Fatalf("welcome = %+v, want an incompatible-protocol refusal naming both versions", w.Error)
		}
	})

	t.Run("certificate of another CA", func(t *testing.T) {
		stranger, err := pki.NewCA(time.Now())
		if err != nil {
			t.Fatal(err)
		}
		cert, err := stranger.IssueTLS(pki.Identity{Kind: pki.KindHost, ID: "hst_forged", Name: "forged"}, time.Now(), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		w := rawHello(t, n, &cert, linkproto.Hello{Proto: linkproto.Version, Kind: linkproto.KindLeaf, Name: "forged"})
		if w.Error == nil || w.Error.Code != linkproto.CodeBadCert || !strings.Contains(w.Error.Message, "not issued by this cluster's CA") {
			t.Fatalf("welcome = %+v, want a bad-certificate refusal", w.Error)
		}
		var seen bool
		for _, l := range n.hub.Links() {
			seen = seen || (l.State == "refused" && strings.Contains(l.LastError, "not issued by this cluster's CA"))
		}
		if !seen {
			t.Error("the refusal is not in the link list")
		}
	})
}

// rawHello speaks the protocol by hand, to send what a real agent would not.
func rawHello(t *testing.T, n *node, cert *tls.Certificate, hello linkproto.Hello) linkproto.Welcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	raw, err := link.Dial(ctx, n.srv.URL, false)
	if err != nil {
		t.Fatal(err)
	}
	conn := tls.Client(raw, link.ClientTLS(n.ca.Cert, [32]byte{}, cert, n.srv.URL, ""))
	defer conn.Close()
	if err := conn.HandshakeContext(ctx); err != nil {
		t.Fatal(err)
	}
	if err := linkproto.WriteFrame(conn, hello); err != nil {
		t.Fatal(err)
	}
	var w linkproto.Welcome
	if err := linkproto.ReadFrame(conn, &w); err != nil {
		t.Fatal(err)
	}
	return w
}

func TestFailoverToNextHub(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	n := newNode(t, "hub1.test", false)
	addr := strings.TrimPrefix(n.srv.URL, "http://")
	first := newProxy(t, addr)
	second := newProxy(t, addr)
	a := newAgent(t, "host-f", memProvider(t),
		linkproto.HubSetting{URL: "http://" + first.Addr()}, linkproto.HubSetting{URL: "http://" + second.Addr()})
	if err := a.Join(ctx, n.token(t, 1, time.Now().Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	run(t, a)
	eventually(t, "linked through the first hub", func() bool { return a.Status().Hub == "http://"+first.Addr() })
	first.Close()
	eventually(t, "linked through the second hub", func() bool {
		return a.Status().Hub == "http://"+second.Addr() && n.hub.Linked(a.HostID())
	})
}

// proxy forwards TCP to a target until closed; Close also cuts every
// connection, like a node's listener going away. Once frozen it passes
// nothing more, not even an end, and keeps the connections open, like a
// hung peer or a path that drops packets.
type proxy struct {
	ln     net.Listener
	frozen atomic.Bool
	mu     sync.Mutex
	conns  []net.Conn
}

func newProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go p.pipe(u, c)
			go p.pipe(c, u)
		}
	}()
	t.Cleanup(p.Close)
	return p
}

// pipe copies src to dst, then closes dst, unless frozen.
func (p *proxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if p.frozen.Load() {
			if err != nil {
				return // the other side sees no end either
			}
			continue // dropped
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				err = werr
			}
		}
		if err != nil {
			dst.Close()
			return
		}
	}
}

func (p *proxy) Addr() string { return p.ln.Addr().String() }

func (p *proxy) Close() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}
