package bench

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// descendants lists every process below pid, from /proc.
func descendants(pid int) ([]int, error) {
	procs, err := scanProcs()
	if err != nil {
		return nil, err
	}
	children := map[int][]int{}
	for _, p := range procs {
		children[p.ppid] = append(children[p.ppid], p.pid)
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out, nil
}

// procStat is what the harnesses need of /proc/PID/stat.
type procStat struct {
	pid, ppid int
	cpu       uint64 // utime+stime, clock ticks
}

// scanProcs reads /proc/*/stat.
func scanProcs() ([]procStat, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var out []procStat
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces; split after ')'.
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) < 13 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		ut, _ := strconv.ParseUint(f[11], 10, 64)
		st, _ := strconv.ParseUint(f[12], 10, 64)
		out = append(out, procStat{pid: pid, ppid: ppid, cpu: ut + st})
	}
	return out, nil
}

// childrenCPU maps each descendant of this process to its CPU ticks.
func childrenCPU() map[int]uint64 {
	procs, err := scanProcs()
	if err != nil {
		return nil
	}
	children := map[int][]procStat{}
	for _, p := range procs {
		children[p.ppid] = append(children[p.ppid], p)
	}
	out := map[int]uint64{}
	queue := []int{os.Getpid()}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out[c.pid] = c.cpu
			queue = append(queue, c.pid)
		}
	}
	return out
}

// childrenDelta is the CPU the descendants used between two readings;
// processes that appeared meanwhile count in full.
func childrenDelta(a, b map[int]uint64) time.Duration {
	var ticks uint64
	for pid, t := range b {
		if t0, ok := a[pid]; ok && t0 <= t {
			ticks += t - t0
		} else if !ok {
			ticks += t
		}
	}
	return time.Duration(ticks) * time.Second / clockTicks
}

func procName(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(b))
}
