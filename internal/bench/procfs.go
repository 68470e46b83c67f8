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
	var out []int
	for _, p := range below(procs, pid) {
		out = append(out, p.pid)
	}
	return out, nil
}

// below returns the processes under pid in procs, breadth first.
func below(procs []procStat, pid int) []procStat {
	children := map[int][]procStat{}
	for _, p := range procs {
		children[p.ppid] = append(children[p.ppid], p)
	}
	var out []procStat
	for queue := []int{pid}; len(queue) > 0; queue = queue[1:] {
		for _, c := range children[queue[0]] {
			out = append(out, c)
			queue = append(queue, c.pid)
		}
	}
	return out
}

// procStat is what the harnesses need of /proc/PID/stat.
type procStat struct {
	pid, ppid int
	cpu       uint64 // utime+stime, clock ticks
	reaped    uint64 // cutime+cstime: the CPU of the children it reaped
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
		if p, err := readProcStat(pid); err == nil {
			out = append(out, p)
		}
	}
	return out, nil
}

// readProcStat reads /proc/PID/stat.
func readProcStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	// pid (comm) state ppid ...: comm may hold spaces; split after ')'.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 15 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	ppid, _ := strconv.Atoi(f[1])
	var t [4]uint64 // utime, stime, cutime, cstime
	for i := range t {
		if t[i], err = strconv.ParseUint(f[11+i], 10, 64); err != nil {
			return procStat{}, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
	}
	return procStat{pid: pid, ppid: ppid, cpu: t[0] + t[1], reaped: t[2] + t[3]}, nil
}

// procCPU is the user+system CPU of pid so far.
func procCPU(pid int) (time.Duration, error) {
	p, err := readProcStat(pid)
	return time.Duration(p.cpu) * time.Second / clockTicks, err
}

// childrenCPU maps each descendant of this process to its CPU ticks.
func childrenCPU() map[int]uint64 {
	procs, err := scanProcs()
	if err != nil {
		return nil
	}
	out := map[int]uint64{}
	for _, p := range below(procs, os.Getpid()) {
		out[p.pid] = p.cpu
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
