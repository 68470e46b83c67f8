package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"lobby/internal/provider/local"
)

// agentDir makes a data directory for one host's agent. When the test
// ends, after the agents stopped (cleanups run last-in first-out), every
// desktop kept in it is deleted with its system user, and any process
// still running from it is killed and reported.
func agentDir(tb testing.TB) string {
	tb.Helper()
	dir := sharedDir(tb)
	tb.Cleanup(func() { deleteDesktops(tb, dir) })
	return dir
}

// startAgent runs `lobby agent` for host name with its data in dir,
// linking to hubs in order; join is the join token, or "" once joined.
func startAgent(tb testing.TB, name, dir, join string, hubs ...string) *process {
	tb.Helper()
	args := []string{"agent", "--name", name, "--data", dir, "--ping", "500ms"}
	if join != "" {
		args = append(args, "--join", join)
	}
	for _, h := range hubs {
		args = append(args, "--hub", h)
	}
	return start(tb, "agent "+name, nil, args...)
}

// deleteDesktops deletes the desktops an agent kept in dir, through the
// local provider (as the agent would), then kills what is left.
func deleteDesktops(tb testing.TB, dir string) {
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	p, err := local.New(local.Config{StateDir: dir})
	if err != nil {
		tb.Errorf("cleanup: open the desktops in %s: %v", dir, err)
	} else {
		ds, err := p.List(ctx)
		if err != nil {
			tb.Errorf("cleanup: list desktops in %s: %v", dir, err)
		}
		for _, d := range ds {
			if err := p.Delete(ctx, d.Name); err != nil {
				tb.Errorf("cleanup: delete desktop %s in %s: %v", d.Name, dir, err)
			}
		}
		p.Close()
	}
	for _, pid := range pidsMentioning(dir) {
		tb.Errorf("cleanup: process %d still runs from %s: killing it", pid, dir)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// procStat is what the tests read of /proc/PID/stat.
type procStat struct {
	state byte   // R, S, T, Z…
	start uint64 // field 22: start time in clock ticks since boot
}

func readStat(pid int) (procStat, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, false
	}
	// The command (field 2) is in parentheses and may hold anything.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return procStat{}, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return procStat{}, false
	}
	start, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return procStat{}, false
	}
	return procStat{state: f[0][0], start: start}, true
}

// alive reports whether pid runs (not a zombie) and is still the process
// that started at start (pids are reused).
func alive(pid int, start uint64) bool {
	st, ok := readStat(pid)
	return ok && st.state != 'Z' && st.state != 'X' && st.start == start
}

// xvncProcess reads the Xvnc process the agent in dir recorded for a
// desktop (the local provider's state.json).
func xvncProcess(tb testing.TB, dir, desktop string) (pid int, start uint64) {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "desktops", desktop, "state.json"))
	if err != nil {
		tb.Fatal(err)
	}
	var st struct {
		Processes []struct {
			Role  string `json:"role"`
			PID   int    `json:"pid"`
			Start uint64 `json:"start_time"`
		} `json:"processes"`
	}
	if err := json.Unmarshal(b, &st); err != nil {
		tb.Fatal(err)
	}
	for _, p := range st.Processes {
		if p.Role == "xvnc" {
			return p.PID, p.Start
		}
	}
	tb.Fatalf("desktop %s in %s has no Xvnc process recorded: %s", desktop, dir, b)
	return 0, 0
}

// pidsMentioning returns the live processes with an argument containing
// s: desktops started from a test's own directory, never others.
func pidsMentioning(s string) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		if st, ok := readStat(pid); !ok || st.state == 'Z' {
			continue
		}
		for _, arg := range strings.Split(string(b), "\x00") {
			if arg != "" && strings.Contains(arg, s) {
				out = append(out, pid)
				break
			}
		}
	}
	return out
}
