package bench

import (
	"fmt"
	"io"
	"time"
)

// LinkTargetAddedP99 is the most latency the link path may add at p99
// on loopback (issue 4).
const LinkTargetAddedP99 = time.Millisecond

// Print writes the report.
func (r *LinkResult) Print(w io.Writer) {
	c := r.Config
	fmt.Fprintf(w, "lobby bench link: the console through node ⇄ link ⇄ agent, next to the node's in-process path, websockify (%s) and direct TCP\n", r.Websockify)
	fmt.Fprintf(w, "Machine: %s\n", r.Machine)
	fmt.Fprintf(w, "Node in this process (server.New, plain HTTP on loopback) with its in-process agent (the path without a link); one agent in this\n")
	fmt.Fprintf(w, "  process (package agent, memory provider) joined with a token from POST /api/v1/tokens and linked over the real protocol\n")
	fmt.Fprintf(w, "  (WebSocket on the node's listener, mutual TLS 1.3 inside, yamux; ping %s), host %s. Both agents' consoles are the same sources.\n", r.LinkConfig.LinkPing, r.HostID)
	fmt.Fprintf(w, "Throughput: synthetic RFB source (1280x800x32 Raw frames of 4,000 KiB; the memory provider's, and memory.ListenSynthetic for direct\n")
	fmt.Fprintf(w, "  TCP and websockify); one WebSocket client asks for full non-incremental updates, %d outstanding, %s per path.\n", c.Outstanding, c.Duration)
	g := r.GatewayResult
	writePaths(w, &g, c.Pings, c.Rounds)
	link, ws, local := g.rate(PathLink).MiBps(), g.rate(PathWebsockify).MiBps(), g.rate(PathLobby).MiBps()
	a50, a99 := g.Added(PathLink)
	l50, l99 := g.Added(PathLobby)
	fmt.Fprintf(w, "The link's cost over the in-process gateway: %.0f vs %.0f MiB/s (%.0f%%), %s more at p50 and %s at p99\n",
		link, local, 100*link/max(local, 1), Us(a50-l50), Us(a99-l99))
	fmt.Fprintf(w, "Targets: link throughput >= websockify's: %s; added p99 < %s on loopback: %s\n",
		verdict(link >= ws, fmt.Sprintf("%.0f vs %.0f MiB/s", link, ws)), Us(LinkTargetAddedP99),
		verdict(a99 < LinkTargetAddedP99, Us(a99)))
	if d := r.Desktop; d != nil {
		fmt.Fprintf(w, "Real desktop: %s\n", d.How)
		dg := &GatewayResult{Throughput: d.Throughput, Latency: d.Latency}
		writePaths(w, dg, c.Pings, c.Rounds)
		dl, dw := dg.rate(PathLink).MiBps(), dg.rate(PathWebsockify).MiBps()
		_, d99 := dg.Added(PathLink)
		fmt.Fprintf(w, "Targets on the real desktop: link throughput >= websockify's: %s; added p99 < %s: %s\n",
			verdict(dl >= dw, fmt.Sprintf("%.0f vs %.0f MiB/s", dl, dw)), Us(LinkTargetAddedP99), verdict(d99 < LinkTargetAddedP99, Us(d99)))
	} else if r.DesktopNote != "" {
		fmt.Fprintf(w, "Real desktop: %s\n", r.DesktopNote)
	}
	if x := g.rate(PathLink); x.CPU != nil {
		fmt.Fprintf(w, "Where the CPU went while the link path relayed (this process: source, node, agent and client):\n")
		x.CPU.Write(w, 12)
	}
	if c.CPUProfile != "" {
		fmt.Fprintf(w, "CPU profile of the link path's throughput phase: %s (node goroutines labelled side=node, the agent's side=agent: go tool pprof -tags %s)\n", c.CPUProfile, c.CPUProfile)
	}
}

// writePaths writes the throughput and latency tables of a result.
func writePaths(w io.Writer, g *GatewayResult, pings, rounds int) {
	t := &table{}
	t.add("throughput", "MiB/s", "vs websockify", "this process", "children (websockify, agents)", "others (not ours)")
	ws := g.rate(PathWebsockify).MiBps()
	for _, x := range g.Throughput {
		rel := "-"
		if ws > 0 {
			rel = fmt.Sprintf("%.2fx", x.MiBps()/ws)
		}
		t.add(x.Path, fmt.Sprintf("%.0f", x.MiBps()), rel, fmt.Sprintf("%.2f cores", x.CPU.CoresUsed()),
			fmt.Sprintf("%.2f cores", x.CPU.ChildCores()), fmt.Sprintf("%.2f cores", x.CPU.OtherCores()))
	}
	t.write(w)
	fmt.Fprintf(w, "  (CPU in cores from getrusage, /proc/PID/stat of our children, and /proc/stat for the rest of the shared machine)\n")
	fmt.Fprintf(w, "Latency: %d round trips per path in %d interleaved rounds (FramebufferUpdateRequest for one pixel → FramebufferUpdate)", pings, rounds)
	if g.LatencyOn != "" {
		fmt.Fprintf(w, " against %s", g.LatencyOn)
	}
	fmt.Fprintln(w)
	t = &table{}
	t.add("round trip", "count", "p50", "p99", "max", "added p50", "added p99")
	for _, l := range g.Latency {
		a50, a99 := g.Added(l.Path)
		add50, add99 := "-", "-"
		if l.Path != PathDirect {
			add50, add99 = Us(a50), Us(a99)
		}
		t.add(l.Path, fmt.Sprint(l.N), Us(l.P50), Us(l.P99), Us(l.Max), add50, add99)
	}
	t.write(w)
}
