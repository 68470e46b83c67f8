package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Machine describes where a benchmark ran.
type Machine struct {
	CPUModel   string
	Cores      int // logical CPUs the OS reports
	GOMAXPROCS int
	GoVersion  string
	Kernel     string
	MemTotal   int64 // bytes
}

// ReadMachine reads /proc for the CPU model, the kernel and the memory.
func ReadMachine() Machine {
	m := Machine{Cores: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), GoVersion: runtime.Version(), CPUModel: "unknown"}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		if v, ok := procField(b, "model name", ':'); ok {
			m.CPUModel = v
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		if v, ok := procField(b, "MemTotal", ':'); ok {
			m.MemTotal = parseKB(v)
		}
	}
	return m
}

// String is one line for a report header.
func (m Machine) String() string {
	return fmt.Sprintf("CPU %s, %d cores, GOMAXPROCS %d, %s, Linux %s, %s RAM",
		m.CPUModel, m.Cores, m.GOMAXPROCS, m.GoVersion, m.Kernel, MiB(m.MemTotal))
}

// procField returns the value of the first "key<sep> value" line.
func procField(b []byte, key string, sep byte) (string, bool) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		k, v, ok := strings.Cut(line, string(sep))
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}

// parseKB parses "1234 kB" into bytes; 0 when it cannot.
func parseKB(v string) int64 {
	f := strings.Fields(v)
	if len(f) == 0 {
		return 0
	}
	n, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		return 0
	}
	return n << 10
}

// Mem is a process's resident memory from /proc/PID/status.
type Mem struct {
	RSS int64 // VmRSS, bytes
	HWM int64 // VmHWM, the peak RSS, bytes
}

// ReadMem reads VmRSS and VmHWM of pid (0 is this process).
func ReadMem(pid int) (Mem, error) {
	path := "/proc/self/status"
	if pid != 0 {
		path = fmt.Sprintf("/proc/%d/status", pid)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return Mem{}, fmt.Errorf("read memory: %w", err)
	}
	rss, ok1 := procField(b, "VmRSS", ':')
	hwm, ok2 := procField(b, "VmHWM", ':')
	if !ok1 || !ok2 {
		return Mem{}, fmt.Errorf("read memory: %s has no VmRSS/VmHWM", path)
	}
	return Mem{RSS: parseKB(rss), HWM: parseKB(hwm)}, nil
}

// SelfMem is ReadMem(0), zero on error (reports show 0 B).
func SelfMem() Mem {
	m, _ := ReadMem(0)
	return m
}

// ReadPss returns the proportional set size of pid from
// /proc/PID/smaps_rollup.
func ReadPss(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0, fmt.Errorf("read pss: %w", err)
	}
	v, ok := procField(b, "Pss", ':')
	if !ok {
		return 0, fmt.Errorf("read pss: no Pss line for pid %d", pid)
	}
	return parseKB(v), nil
}

// CPUTime is the user plus system CPU this process has used.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// MiB formats bytes as mebibytes.
func MiB(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// cpuStat is the machine-wide busy and total time from /proc/stat, in
// clock ticks, and its context switches since boot.
type cpuStat struct{ busy, total, ctxt uint64 }

func readCPUStat() cpuStat {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuStat{}
	}
	line, rest, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return cpuStat{}
	}
	var s cpuStat
	if _, v, ok := strings.Cut(rest, "\nctxt "); ok {
		v, _, _ = strings.Cut(v, "\n")
		s.ctxt, _ = strconv.ParseUint(v, 10, 64)
	}
	for i, v := range f[1:] {
		n, _ := strconv.ParseUint(v, 10, 64)
		if i >= 8 { // guest time is already in user
			break
		}
		s.total += n
		if i != 3 && i != 4 { // idle, iowait
			s.busy += n
		}
	}
	return s
}

// machineBusy is the CPU time all processes used between two readings
// (the first line of /proc/stat sums every CPU).
func machineBusy(a, b cpuStat) time.Duration {
	if b.busy <= a.busy {
		return 0
	}
	return time.Duration(b.busy-a.busy) * time.Second / clockTicks
}

// clockTicks is USER_HZ, 100 on Linux.
const clockTicks = 100

// OtherLoad is the CPU, in cores, that processes other than this one used
// over the interval d (from /proc/stat and getrusage).
func OtherLoad(ctx context.Context, d time.Duration) (float64, error) {
	s0, c0, t0 := readCPUStat(), CPUTime(), time.Now()
	if err := sleep(ctx, d); err != nil {
		return 0, err
	}
	busy, self := machineBusy(s0, readCPUStat()), CPUTime()-c0
	return max(0, (busy-self).Seconds()/time.Since(t0).Seconds()), nil
}

// WaitQuiet waits until other processes use less than maxCores over two
// consecutive seconds, or until limit passes. It returns the last reading
// and whether the machine was quiet.
func WaitQuiet(ctx context.Context, maxCores float64, limit time.Duration) (float64, bool, error) {
	deadline := time.Now().Add(limit)
	calm := 0
	for {
		load, err := OtherLoad(ctx, time.Second)
		if err != nil {
			return load, false, err
		}
		if load < maxCores {
			calm++
		} else {
			calm = 0
		}
		if calm >= 2 {
			return load, true, nil
		}
		if time.Now().After(deadline) {
			return load, false, nil
		}
	}
}
