package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"lobby/internal/auth"
	"lobby/internal/store/pgtest"
)

// These tests run every harness at tiny sizes and check that the numbers
// are sane and not zero. They assert nothing about speed.

func TestProfile(t *testing.T) {
	p, err := StartProfile("")
	if err != nil {
		t.Fatal(err)
	}
	x := 0
	for start := time.Now(); time.Since(start) < 300*time.Millisecond; {
		x += len(strings.Repeat("lobby", 100))
	}
	r, err := p.Stop()
	if err != nil {
		t.Fatal(err)
	}
	if r.Wall <= 0 || r.CPU <= 0 || x == 0 {
		t.Fatalf("report %+v", r)
	}
	if !p.off && (r.Sampled <= 0 || len(r.Top) == 0 || len(r.Categories) == 0) {
		t.Fatalf("profile parsed to nothing: %+v", r)
	}
	var out bytes.Buffer
	r.Write(&out, 5)
	if !strings.Contains(out.String(), "cores") {
		t.Fatalf("report:\n%s", out.String())
	}
}

func TestAssign(t *testing.T) {
	t.Parallel()
	r, err := RunAssign(context.Background(), AssignConfig{Users: 4, Desktops: 2, Concurrency: 2, Duration: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if r.Assignments == 0 || r.Errors != 0 || r.Rate() <= 0 || r.Connect.P50 <= 0 || r.Release.N == 0 || r.MemAfter.RSS <= 0 {
		t.Fatalf("result %+v", r)
	}
	printed(t, r.Print, "assignments per second", "connect", "release")
}

func TestLogin(t *testing.T) {
	t.Parallel()
	r, err := RunLogin(context.Background(), LoginConfig{Users: 3, InFlight: 2, HashRuns: 1})
	if err != nil {
		t.Fatal(err)
	}
	if r.OK != 3 || r.Errors != 0 || r.Floor <= 0 || r.Ideal <= 0 || r.Floor < r.Ideal/2 || r.Total <= 0 || r.HashOne <= 0 || r.Desktop.Max < r.Desktop.Min {
		t.Fatalf("result %+v", r)
	}
	printed(t, r.Print, "floor", "time to desktop", "Fairness")
}

// TestHash is not parallel: it counts the process's allocations.
func TestHash(t *testing.T) {
	sets := []auth.Params{auth.OWASPParams[3], auth.OWASPParams[4]}
	r, err := RunHash(context.Background(), HashConfig{Sets: sets, Runs: 1, Rounds: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Sets) != 2 {
		t.Fatalf("%d sets measured, want 2", len(r.Sets))
	}
	for i, s := range r.Sets {
		if s.Params != sets[i] || len(s.One) != 2 || len(s.Parallel) != 2 || s.One[1] <= 0 || s.Parallel[1] <= 0 {
			t.Fatalf("set %d: %+v", i, s)
		}
		// Each hash allocates its memory: m KiB.
		if want := float64(s.Params.Memory) / 1024; s.AllocMiB < want*0.9 || s.AllocMiB > want*1.5 {
			t.Errorf("%s: %.1f MiB allocated per hash, want about %.0f", s.Params, s.AllocMiB, want)
		}
	}
	printed(t, r.Print, "m=9216,t=4,p=1", "m=7168,t=5,p=1", "storm floor")
}

func TestGateway(t *testing.T) {
	t.Parallel()
	needs(t, "websockify")
	r, err := RunGateway(context.Background(), GatewayConfig{Duration: 200 * time.Millisecond, Pings: 20, Rounds: 2})
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range r.Throughput {
		if x.Bytes <= 0 || x.MiBps() <= 0 {
			t.Errorf("throughput %s: %+v", x.Path, x)
		}
	}
	for _, l := range r.Latency {
		if l.N != 20 || l.P50 <= 0 {
			t.Errorf("latency %s: %+v", l.Path, l)
		}
	}
	printed(t, r.Print, "websockify", "lobby /gateway/vnc", "added")
}

func TestMemory(t *testing.T) {
	t.Parallel()
	_, err := exec.LookPath("Xvnc")
	if err != nil && os.Getenv("CI") == "true" {
		t.Fatal("Xvnc is missing: make test installs tigervnc-standalone-server")
	}
	r, err := RunMemory(context.Background(), MemoryConfig{Settle: 50 * time.Millisecond, NoDesktop: err != nil})
	if err != nil {
		t.Fatal(err)
	}
	if r.Node.RSS <= 0 || r.NodePss <= 0 {
		t.Fatalf("node %+v", r)
	}
	if !r.Config.NoDesktop && (r.DesktopPss() <= 0 || len(r.Xvnc) != 2 || r.Xvnc[0].Pss <= 0) {
		t.Fatalf("desktop %+v %+v", r.Desktop, r.Xvnc)
	}
	printed(t, r.Print, "VmRSS", "Target")
}

// needs skips without a program, except under CI where it fails.
func needs(t *testing.T, prog string) {
	t.Helper()
	if _, err := exec.LookPath(prog); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is missing: make test installs it", prog)
		}
		t.Skipf("%s is missing: make test installs it", prog)
	}
}

// printed checks that a report mentions each of want.
func printed(t *testing.T, print func(w io.Writer), want ...string) {
	t.Helper()
	var b bytes.Buffer
	print(&b)
	for _, s := range want {
		if !strings.Contains(b.String(), s) {
			t.Errorf("report lacks %q:\n%s", s, b.String())
		}
	}
}

// TestTakeover kills the leader of two real node processes, then the other
// node of a fresh pair, while their jobs run.
func TestTakeover(t *testing.T) {
	t.Parallel()
	bin := buildLobby(t)
	r, err := RunTakeover(context.Background(), TakeoverConfig{Binary: bin, Nodes: 2, Jobs: 2, Rounds: 2, Postgres: pgtest.URL(t), DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Rounds) != 2 || !r.Rounds[0].WasLeader || r.Rounds[1].WasLeader {
		t.Fatalf("rounds %+v", r.Rounds)
	}
	for _, x := range r.Rounds {
		if x.All <= 0 || x.First > x.All || x.Relinked <= 0 || x.Completed != 2 || x.Starts != 2 {
			t.Errorf("round %+v: want both jobs moved, completed, and started once each", x)
		}
	}
	if r.Rounds[0].Leader <= 0 {
		t.Errorf("no new leader measured after the leader's death: %+v", r.Rounds[0])
	}
	// make test installs HAProxy, so under CI the balancer must be measured.
	if (haproxyBinary() != "" || os.Getenv("CI") == "true") && (r.Balancer == "" || r.Rounds[0].Balancer <= 0) {
		t.Errorf("HAProxy is installed (or CI, where make test installs it) but the balancer was not measured: %q %+v", r.Balancer, r.Rounds[0])
	}
	printed(t, r.Print, "every job elsewhere", "new leader", "no job run twice")
}

// TestLockHeld: an X lock file counts only while its process lives.
func TestLockHeld(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, body string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(body), 0o444); err != nil {
			t.Fatal(err)
		}
		return path
	}
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]bool{
		filepath.Join(dir, "missing"):                           false,
		write("live", fmt.Sprintf("%10d\n", os.Getpid())):       true,
		write("stale", fmt.Sprintf("%10d\n", gone.Process.Pid)): false,
		write("garbled", "not a pid\n"):                         true,
	} {
		if got := lockHeld(path); got != want {
			t.Errorf("lockHeld(%s) = %t, want %t", filepath.Base(path), got, want)
		}
	}
}
