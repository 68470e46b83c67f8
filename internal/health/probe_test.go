package health

import (
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"lobby/internal/lobby"
)

// TestProbeRecent: the nodes with a recent heartbeat are probed, and the
// prober's own node however old its heartbeat; each probe lines up with
// its node.
func TestProbeRecent(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.Handle(PingPath, PingHandler(func() Ping { return Ping{SiteID: 1, Name: "one"} }))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()

	now := time.Now()
	old := now.Add(-2 * probeHorizon)
	nodes := []lobby.Node{
		{SiteID: 1, Address: srv.URL, Heartbeat: now},
		{SiteID: 2, Address: srv.URL, Heartbeat: old}, // long dead: not probed
		{SiteID: 3, Address: closed, Heartbeat: old},  // the prober's own
		{SiteID: 4, Address: srv.URL, Heartbeat: now}, // site 1 answers there
	}
	p := NewProber(10 * time.Second)
	t.Cleanup(p.Close)
	targets, probes := probeRecent(t.Context(), p, nodes, now, 3)
	var sites []int
	for _, n := range targets {
		sites = append(sites, n.SiteID)
	}
	if len(sites) != 3 || sites[0] != 1 || sites[1] != 3 || sites[2] != 4 || len(probes) != 3 {
		t.Fatalf("probed sites %v (%d probes), want 1, 3 and 4", sites, len(probes))
	}
	if probes[0].Err != nil || probes[0].Ping.Name != "one" || probes[0].RTT <= 0 {
		t.Errorf("probe of site 1 = %+v, want node one's answer", probes[0])
	}
	if probes[1].Err == nil {
		t.Errorf("probe of site 3 at a closed port = %+v, want an error", probes[1])
	}
	if probes[2].Err == nil {
		t.Errorf("probe of site 4 where site 1 answers = %+v, want an error", probes[2])
	}
	if targets, _ := probeRecent(t.Context(), p, nodes[1:3], now, 0); len(targets) != 0 {
		t.Errorf("without a node of its own, old nodes probed: %+v", targets)
	}
}
