package bench

import (
	"fmt"
	"io"
	"time"
)

// rate returns the throughput of a path, or a zero Rate.
func (r *GatewayResult) rate(path string) Rate {
	for _, t := range r.Throughput {
		if t.Path == path {
			return t
		}
	}
	return Rate{}
}

// lat returns the latency of a path, or a zero one.
func (r *GatewayResult) lat(path string) PathLatency {
	for _, l := range r.Latency {
		if l.Path == path {
			return l
		}
	}
	return PathLatency{}
}

// Added is the latency a proxy adds over the direct path, at p50 and p99.
func (r *GatewayResult) Added(path string) (p50, p99 time.Duration) {
	d, p := r.lat(PathDirect), r.lat(path)
	return p.P50 - d.P50, p.P99 - d.P99
}

// Print writes the report.
func (r *GatewayResult) Print(w io.Writer) {
	c := r.Config
	fmt.Fprintf(w, "lobby bench gateway: /gateway/vnc next to websockify (%s), same RFB source\n", r.Websockify)
	fmt.Fprintf(w, "Machine: %s\n", r.Machine)
	fmt.Fprintf(w, "Throughput: synthetic RFB source (memory provider; 1280x800x32 Raw frames of 4,000 KiB) in this process;\n")
	fmt.Fprintf(w, "  websockify as a child process in front of it on loopback; Lobby's node in this process with the memory provider's console;\n")
	fmt.Fprintf(w, "  one WebSocket client (github.com/coder/websocket, subprotocol binary) in this process asks for full non-incremental updates,\n")
	fmt.Fprintf(w, "  %d requests outstanding, for %s per path. Everything shares the %d cores.\n", c.Outstanding, c.Duration, r.Machine.Cores)
	t := &table{}
	t.add("throughput", "MiB/s", "vs websockify", "this process", "children (websockify)", "others (not ours)")
	ws := r.rate(PathWebsockify).MiBps()
	for _, x := range r.Throughput {
		rel := "-"
		if ws > 0 {
			rel = fmt.Sprintf("%.2fx", x.MiBps()/ws)
		}
		t.add(x.Path, fmt.Sprintf("%.0f", x.MiBps()), rel, fmt.Sprintf("%.2f cores", x.CPU.CoresUsed()),
			fmt.Sprintf("%.2f cores", x.CPU.ChildCores()), fmt.Sprintf("%.2f cores", x.CPU.OtherCores()))
	}
	t.write(w)
	fmt.Fprintf(w, "  (CPU in cores from getrusage, /proc/PID/stat of our children, and /proc/stat for the rest of the shared machine)\n")
	fmt.Fprintf(w, "Latency: %d round trips per path in %d interleaved rounds against %s\n", c.Pings, c.Rounds, r.LatencyOn)
	t = &table{}
	t.add("round trip", "count", "p50", "p99", "max", "added p50", "added p99")
	for _, l := range r.Latency {
		a50, a99 := r.Added(l.Path)
		add50, add99 := "-", "-"
		if l.Path != PathDirect {
			add50, add99 = Us(a50), Us(a99)
		}
		t.add(l.Path, fmt.Sprint(l.N), Us(l.P50), Us(l.P99), Us(l.Max), add50, add99)
	}
	t.write(w)
	lobby, wsr := r.rate(PathLobby).MiBps(), r.rate(PathWebsockify).MiBps()
	l50, _ := r.Added(PathLobby)
	w50, _ := r.Added(PathWebsockify)
	fmt.Fprintf(w, "Target: throughput >= websockify's: %s; less added latency (p50) than websockify: %s\n",
		verdict(lobby >= wsr, fmt.Sprintf("%.0f vs %.0f MiB/s, %.0f%% short", lobby, wsr, 100*(1-lobby/wsr))),
		verdict(l50 < w50, fmt.Sprintf("%s vs %s", Us(l50), Us(w50))))
	if x := r.rate(PathLobby); x.CPU != nil {
		fmt.Fprintf(w, "Where the CPU went while Lobby relayed (this process: source, node and client):\n")
		x.CPU.Write(w, 10)
	}
	if c.CPUProfile != "" {
		fmt.Fprintf(w, "CPU profile of Lobby's throughput phase: %s\n", c.CPUProfile)
	}
}
