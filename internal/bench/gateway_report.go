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
	writePaths(w, r, c.Pings, c.Rounds)
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
