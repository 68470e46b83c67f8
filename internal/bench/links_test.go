package bench

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestLinksSteps(t *testing.T) {
	t.Parallel()
	tests := []struct {
		links int
		steps []int
		want  []int
	}{
		{5000, nil, nil},
		{5000, []int{2000, 500, 1000, 500}, []int{500, 1000, 2000}},
		{1000, []int{0, 1000, 2000, 10}, []int{10}},
	}
	for _, tt := range tests {
		c := LinksConfig{Links: tt.links, Steps: tt.steps, Binary: "lobby"}
		if err := c.defaults(); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(c.Steps, tt.want) {
			t.Errorf("links %d, steps %v: %v, want %v", tt.links, tt.steps, c.Steps, tt.want)
		}
	}
}

func TestRestartFromLinks(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(peer string, d time.Duration) linkStatus {
		return linkStatus{Peer: peer, State: "up", Since: t0.Add(d)}
	}
	ls := []linkStatus{
		at("bench-00001", 2100*time.Millisecond),
		at("bench-00002", 2150*time.Millisecond),
		at("bench-00003", 2190*time.Millisecond),
		at("bench-00004", 3500*time.Millisecond),
		at("other", 2*time.Second),               // not the fleet's
		at("bench-00005", -time.Second),          // up before the kill
		{Peer: "x", State: "refused", Since: t0}, // a refusal
		at("bench-00006", 5*time.Second+time.Nanosecond),
	}
	var r LinksRestart
	r.fromLinks(ls, "bench-", t0)
	if r.Links != 5 || r.Refused != 1 || r.AllBack != 5*time.Second+time.Nanosecond || r.Busiest != 3 {
		t.Fatalf("restart %+v", r)
	}
	if want := []int{0, 0, 3, 1, 0, 1}; !slices.Equal(r.PerSecond, want) {
		t.Fatalf("per second %v, want %v", r.PerSecond, want)
	}
}

func TestBusiest(t *testing.T) {
	t.Parallel()
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	tests := []struct {
		in   []time.Duration
		want int
	}{
		{nil, 0},
		{ms(5), 1},
		{ms(0, 99, 100, 150, 199, 300), 3},
		{ms(0, 100, 200, 300), 1},
	}
	for _, tt := range tests {
		if got := busiest(tt.in, 100*time.Millisecond); got != tt.want {
			t.Errorf("busiest(%v) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

// TestLinks runs the links benchmark at a tiny size with a real node
// process, one real agent process and a restart.
func TestLinks(t *testing.T) {
	t.Parallel()
	bin := buildLobby(t)
	r, err := RunLinks(context.Background(), LinksConfig{
		Binary: bin, Links: 3, Steps: []int{2}, Desktops: 2, Window: time.Second, Settle: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	last := r.Last()
	if len(r.Steps) != 2 || last.Links != 3 || r.Desktops != 6 || last.Mem.RSS <= 0 || last.NodeCPU < 0 || r.Idle.RSS <= 0 {
		t.Fatalf("result %+v", r)
	}
	if x := r.Restart; x == nil || x.Links != 3 || x.Desktops != 6 || x.AllBack <= 0 || x.Mem.RSS <= 0 {
		t.Fatalf("restart %+v", r.Restart)
	}
	if r.Agent == nil || r.Agent.Mem.RSS <= 0 {
		t.Fatalf("real agent %+v", r.Agent)
	}
	printed(t, r.Print, "per link", "Restart", "One real agent", "Targets")
}

func TestLinksInProcess(t *testing.T) {
	t.Parallel()
	r, err := RunLinks(context.Background(), LinksConfig{
		InProcess: true, Links: 2, Desktops: 3, Window: 500 * time.Millisecond, Settle: 100 * time.Millisecond, DataDir: t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.Last().Links != 2 || r.Desktops != 6 || r.Restart != nil || r.Agent != nil {
		t.Fatalf("result %+v", r)
	}
	printed(t, r.Print, "in this process", "In-process run")
}

func TestLink(t *testing.T) {
	t.Parallel()
	needs(t, "websockify")
	r, err := RunLink(context.Background(), LinkConfig{
		GatewayConfig: GatewayConfig{Duration: 200 * time.Millisecond, Pings: 20, Rounds: 2, Synthetic: true},
		NoDesktop:     true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Throughput) != 4 || len(r.Latency) != 4 || r.HostID == "" {
		t.Fatalf("result %+v", r)
	}
	for _, x := range r.Throughput {
		if x.Bytes <= 0 {
			t.Errorf("throughput %s: %+v", x.Path, x)
		}
	}
	for _, l := range r.Latency {
		if l.N != 20 || l.P50 <= 0 {
			t.Errorf("latency %s: %+v", l.Path, l)
		}
	}
	printed(t, r.Print, PathLink, "websockify", "added p99")
}

// buildLobby builds the lobby binary into the test's directory.
func buildLobby(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go tool is not on PATH: cannot build the lobby binary")
	}
	bin := filepath.Join(t.TempDir(), "lobby")
	cmd := exec.Command(goTool, "build", "-o", bin, "lobby/cmd/lobby")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build lobby: %v\n%s", err, out)
	}
	return bin
}
