package e2e

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"lobby/internal/syncbuf"
)

// lobbyBin is the lobby binary TestMain builds once for every test.
var lobbyBin string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "lobby-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	lobbyBin = filepath.Join(dir, "lobby")
	// Without -race: the processes are what is tested, and a race build
	// of the whole binary takes minutes on two cores.
	build := exec.Command(goTool(), "build", "-o", lobbyBin, "lobby/cmd/lobby")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: build lobby:", err)
		return 1
	}
	return m.Run()
}

// goTool is the go command that runs these tests.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(os.Getenv("GOROOT"), "bin", "go")
}

// deadline bounds every wait: generous, for a loaded two-core CI machine.
const deadline = 60 * time.Second

// eventually polls cond until it holds, or fails the test after deadline.
func eventually(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	end := time.Now().Add(deadline)
	for !cond() {
		if time.Now().After(end) {
			tb.Fatalf("timed out after %s waiting until %s", deadline, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// requireDesktops skips without TigerVNC and the default session's
// programs, except under CI, where a missing package is a failure.
func requireDesktops(tb testing.TB) {
	tb.Helper()
	for _, bin := range []string{"Xvnc", "twm", "xterm"} {
		if _, err := exec.LookPath(bin); err != nil {
			msg := bin + " is missing: run `make test`, which installs tigervnc-standalone-server, twm and xterm"
			if os.Getenv("CI") == "true" {
				tb.Fatal(msg)
			}
			tb.Skip(msg)
		}
	}
}

// sharedDir makes a directory that desktop users can traverse
// (t.TempDir's parent is 0700 and owned by root).
func sharedDir(tb testing.TB) string {
	tb.Helper()
	dir, err := os.MkdirTemp("", "lobby-e2e-")
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// process is a lobby process in its own process group, stopped (the whole
// group) when the test ends.
type process struct {
	name           string
	cmd            *exec.Cmd
	stdout, stderr syncbuf.Buffer
	done           chan struct{} // closed when it has exited
	err            error         // Wait's result, once done is closed
}

// start runs the lobby binary with args; env adds to a clean environment
// (this process's, without LOBBY_* settings).
func start(tb testing.TB, name string, env []string, args ...string) *process {
	tb.Helper()
	return startBin(tb, lobbyBin, name, env, args...)
}

// startBin is start with another build of lobby.
func startBin(tb testing.TB, bin, name string, env []string, args ...string) *process {
	tb.Helper()
	p := &process{name: name, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(cleanEnv(), env...)
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p.cmd.WaitDelay = 5 * time.Second
	if err := p.cmd.Start(); err != nil {
		tb.Fatalf("start %s: %v", name, err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	tb.Cleanup(func() {
		p.stop(tb)
		if tb.Failed() {
			tb.Logf("--- %s (lobby %s) stdout:\n%s--- %s stderr:\n%s", name, strings.Join(args, " "), p.stdout.String(), name, p.stderr.String())
		}
	})
	return p
}

func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LOBBY_") {
			env = append(env, kv)
		}
	}
	return env
}

// exited reports whether the process has exited.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// wait waits for the process to exit by itself and returns its exit code.
func (p *process) wait(tb testing.TB) int {
	tb.Helper()
	select {
	case <-p.done:
	case <-time.After(deadline):
		tb.Fatalf("%s did not exit within %s; its stderr:\n%s", p.name, deadline, p.stderr.String())
	}
	return exitCode(p.err)
}

func exitCode(err error) int {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	}
	return -1
}

// terminate sends SIGTERM to the process (not its group) and waits for
// it to exit, returning its exit code.
func (p *process) terminate(tb testing.TB) int {
	tb.Helper()
	if !p.exited() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	return p.wait(tb)
}

// stop ends the process group: SIGTERM, then SIGKILL if it lingers.
func (p *process) stop(tb testing.TB) {
	pgid := p.cmd.Process.Pid
	if !p.exited() {
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(20 * time.Second):
			tb.Errorf("%s did not stop within 20 s of SIGTERM: killing its process group", p.name)
		}
	}
	// Whatever else is left in the group (the process is its leader).
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	<-p.done
}

// waitStderr waits until the process's stderr contains s.
func (p *process) waitStderr(tb testing.TB, s string) {
	tb.Helper()
	eventually(tb, fmt.Sprintf("%s logs %q", p.name, s), func() bool { return strings.Contains(p.stderr.String(), s) })
}
