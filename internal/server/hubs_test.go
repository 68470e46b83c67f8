package server

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"lobby/internal/pki"
	"lobby/internal/provider/memory"
	"lobby/internal/rfb"
	"lobby/internal/store/pgtest"
)

// TestConsoleThroughNodeLink runs two nodes on one PostgreSQL: node A
// (site 1, the leader, no hosts of its own) and node B (site 2) with the
// only host, its in-process agent. A places the pool's desktop on B's host
// over the node link, and a user who connects through A gets the console
// through the browser's path: WebSocket → A's gateway → node link → B →
// the desktop.
func TestConsoleThroughNodeLink(t *testing.T) {
	t.Parallel()
	pg, key := pgtest.URL(t), pki.NewClusterKeyString()
	cfg := func(name string, site int) Config {
		return Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), PlainHTTP: true, AdminPassword: adminPW, HashSlots: 2,
			Postgres: pg, ClusterKey: key, SiteID: site, Name: name, Logger: testLogger(t)}
	}
	a, baseA := start(t, cfg("node-a", 1))
	eventually(t, "node A leads", a.Member.Leader)
	prov, err := memory.New(memory.Config{Width: 320, Height: 200})
	if err != nil {
		t.Fatal(err)
	}
	cb := cfg("node-b", 2)
	cb.LocalAgent, cb.Provider, cb.Demo = true, prov, 1
	b, baseB := start(t, cb)
	if b.Member.Leader() {
		t.Fatal("node B leads, want A")
	}

	admin := login(t, baseA, "admin", adminPW)
	eventually(t, "A lists its link to B, up with a round trip", func() bool {
		var l struct {
			Items []struct {
				Kind, State, Peer string
				PeerSiteID        int     `json:"peer_site_id"`
				RTT               float64 `json:"rtt_ms"`
			}
		}
		admin.want(200, "GET", "/api/v1/links", nil, &l)
		for _, x := range l.Items {
			if x.Kind == "node" && x.State == "up" && x.Peer == "node-b" && x.PeerSiteID == 2 && x.RTT > 0 {
				return true
			}
		}
		return false
	})
	// B's links page shows the link A dialed.
	web := newPage(t, baseB)
	web.signIn("admin", adminPW)
	eventually(t, "B's links page shows node A linked", func() bool {
		code, body, _ := web.do("GET", "/admin/links", nil)
		i := strings.Index(body, `<tr data-node="1">`)
		return code == 200 && i >= 0 && strings.Contains(body[i:], "node-a") && strings.Contains(body[i:], `<span class="badge up">up</span>`)
	})
	eventually(t, "the demo desktop is running on B's host", func() bool {
		var p struct{ Counts struct{ Free int } }
		admin.want(200, "GET", "/api/v1/pools/demo", nil, &p)
		return p.Counts.Free == 1
	})
	var c struct {
		Desktop struct{ ID, Name, HostID string } `json:"desktop"`
		VNCURL  string                            `json:"vnc_url"`
	}
	admin.want(200, "POST", "/api/v1/connect", map[string]string{"pool": "demo"}, &c)
	if _, ok := a.Hosts.Linked(c.Desktop.HostID); ok {
		t.Fatalf("the desktop's host %s is linked to A, want B's in-process agent", c.Desktop.HostID)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ws, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(baseA, "http")+c.VNCURL, &websocket.DialOptions{Subprotocols: []string{"binary"}})
	if err != nil {
		t.Fatalf("dial A's gateway: %v (%v)", err, resp)
	}
	conn := websocket.NetConn(ctx, ws, websocket.MessageBinary)
	defer conn.Close()
	viewerHandshake(t, conn)
	if _, err := conn.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
	si, err := rfb.ReadServerInit(conn)
	if err != nil {
		t.Fatal(err)
	}
	if si.Width != 320 || si.Height != 200 {
		t.Fatalf("ServerInit %dx%d through A, want B's desktop's 320x200", si.Width, si.Height)
	}

	// Released through B, the desktop's console through A ends too: the
	// next person must not share it with this viewer.
	adminB := login(t, baseB, "admin", adminPW)
	adminB.want(200, "POST", "/api/v1/release", map[string]string{"desktop": c.Desktop.ID}, nil)
	ended := make(chan error, 1)
	go func() { _, err := io.Copy(io.Discard, conn); ended <- err }()
	select {
	case <-ended:
	case <-time.After(20 * time.Second):
		t.Fatal("the console through node A outlived the release made on node B")
	}
}
