package bench

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// clusterCPU is one reading of the CPU each part of a cluster step has
// used so far, to subtract from a later one.
type clusterCPU struct {
	at    time.Time
	self  time.Duration   // this process: the load generator and the agents (and a node run here)
	nodes []time.Duration // each child node process, by site ID - 1; 0 for one run here
	lb    time.Duration   // HAProxy; -1 when unknown
	pg    time.Duration   // the PostgreSQL server's processes; -1 when unknown
	stat  cpuStat
}

// readClusterCPU reads the CPU of every part; pgPID is the postmaster (0
// when unknown).
func readClusterCPU(c *procCluster, lb *balancer, pgPID int) clusterCPU {
	r := clusterCPU{at: time.Now(), self: CPUTime(), stat: readCPUStat(), lb: -1, pg: -1}
	for _, n := range c.nodes {
		var t time.Duration
		if n.self == nil {
			t, _ = n.cpu()
		}
		r.nodes = append(r.nodes, t)
	}
	if lb != nil {
		if t, err := procCPU(lb.c.pid()); err == nil {
			r.lb = t
		}
	}
	if pgPID > 0 {
		if t, err := treeCPU(pgPID); err == nil {
			r.pg = t
		}
	}
	return r
}

// ClusterCPU is the CPU each part used over a measured phase, in cores
// (CPU seconds per second of the phase).
type ClusterCPU struct {
	Wall time.Duration
	// Nodes are the child node processes by site ID - 1 (0 for a node
	// run in this process: it is in Bench).
	Nodes    []float64
	Postgres float64 // -1 when its processes were not found
	Balancer float64 // -1 when HAProxy's process was not read
	// Bench is this process: the load generator and the in-process
	// agents (and, with a CPU profile, site 1).
	Bench float64
	// Other is what every other process on the machine used (/proc/stat).
	Other float64
	// Switches are the machine's context switches per second (/proc/stat
	// ctxt): every process's, ours nearly all of them on a quiet machine.
	Switches float64
}

// cpuBetween turns two readings into cores.
func cpuBetween(a, b clusterCPU) ClusterCPU {
	wall := b.at.Sub(a.at)
	cores := func(d time.Duration) float64 {
		if wall <= 0 {
			return 0
		}
		return d.Seconds() / wall.Seconds()
	}
	r := ClusterCPU{Wall: wall, Bench: cores(b.self - a.self), Balancer: -1, Postgres: -1}
	ours := b.self - a.self
	if a.lb >= 0 && b.lb >= 0 {
		r.Balancer = cores(b.lb - a.lb)
		ours += b.lb - a.lb
	}
	for i := range b.nodes {
		r.Nodes = append(r.Nodes, cores(b.nodes[i]-a.nodes[i]))
		ours += b.nodes[i] - a.nodes[i]
	}
	if a.pg >= 0 && b.pg >= 0 {
		r.Postgres = cores(b.pg - a.pg)
		ours += b.pg - a.pg
	}
	r.Other = max(0, cores(machineBusy(a.stat, b.stat)-ours))
	if wall > 0 && b.stat.ctxt >= a.stat.ctxt {
		r.Switches = float64(b.stat.ctxt-a.stat.ctxt) / wall.Seconds()
	}
	return r
}

// NodesTotal is the CPU of all child node processes together.
func (c ClusterCPU) NodesTotal() float64 {
	t := 0.0
	for _, x := range c.Nodes {
		t += x
	}
	return t
}

// Total is the CPU of everything the benchmark runs.
func (c ClusterCPU) Total() float64 {
	return c.NodesTotal() + max(0, c.Postgres) + max(0, c.Balancer) + c.Bench
}

// postmasterPID finds the PostgreSQL server of dbURL on this machine: the
// process listening on its loopback TCP port. 0 when it is elsewhere, on
// a Unix socket, or cannot be found.
func postmasterPID(dbURL string) int {
	cfg, err := pgx.ParseConfig(dbURL)
	if err != nil {
		return 0
	}
	if ip := net.ParseIP(cfg.Host); cfg.Host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return 0
	}
	inodes := map[string]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		for _, ino := range listeningInodes(f, int(cfg.Port)) {
			inodes[ino] = true
		}
	}
	if len(inodes) == 0 {
		return 0
	}
	procs, err := scanProcs()
	if err != nil {
		return 0
	}
	for _, p := range procs {
		fds, _ := filepath.Glob(fmt.Sprintf("/proc/%d/fd/*", p.pid))
		for _, fd := range fds {
			l, err := os.Readlink(fd)
			if err == nil && strings.HasPrefix(l, "socket:[") && inodes[strings.TrimSuffix(l[len("socket:["):], "]")] {
				return p.pid
			}
		}
	}
	return 0
}

// listeningInodes returns the socket inodes listening on port in a
// /proc/net/tcp file.
func listeningInodes(file string, port int) []string {
	f, err := os.Open(file)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Scan() // the header
	want := fmt.Sprintf(":%04X", port)
	for sc.Scan() {
		// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
		x := strings.Fields(sc.Text())
		if len(x) >= 10 && strings.HasSuffix(x[1], want) && x[3] == "0A" { // 0A: LISTEN
			out = append(out, x[9])
		}
	}
	return out
}

// treeCPU is the CPU of pid, of its live descendants (PostgreSQL's
// backends), and of the ones they reaped (cutime, cstime).
func treeCPU(pid int) (time.Duration, error) {
	procs, err := scanProcs()
	if err != nil {
		return 0, err
	}
	i := slices.IndexFunc(procs, func(p procStat) bool { return p.pid == pid })
	if i < 0 {
		return 0, fmt.Errorf("process %d is gone", pid)
	}
	var ticks uint64
	for _, p := range append(below(procs, pid), procs[i]) {
		ticks += p.cpu + p.reaped
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}
