package bench

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Last is the measurement at the largest size, or a zero step.
func (r *LinksResult) Last() LinksStep {
	if len(r.Steps) == 0 {
		return LinksStep{}
	}
	return r.Steps[len(r.Steps)-1]
}

// Print writes the report.
func (r *LinksResult) Print(w io.Writer) {
	c := r.Config
	fmt.Fprintf(w, "lobby bench links: one node holding agent links (%d desktops each) at a %s ping interval\n", c.Desktops, c.Ping)
	fmt.Fprintf(w, "Machine: %s\n", r.Machine)
	if c.InProcess {
		fmt.Fprintf(w, "Node:    %s; VmRSS and CPU below are of the whole process: node and load generator together\n", r.NodeHow)
	} else {
		fmt.Fprintf(w, "Node:    child process: %s (SQLite in a temporary directory)\n", r.NodeHow)
	}
	fmt.Fprintf(w, "Idle:    before any link, VmRSS %s; CPU %.1f%% of a core over %s\n", MiB(r.Idle.RSS), 100*r.IdleCPU, secs(r.IdleWindow))
	fmt.Fprintf(w, "Load:    in-process agents (package agent, the real protocol: join with a token from POST /api/v1/tokens, then WebSocket + mutual TLS + yamux,\n")
	fmt.Fprintf(w, "         reports of their desktops), each with a memory provider holding %d running desktops and a data directory of its own;\n", c.Desktops)
	fmt.Fprintf(w, "         %d joining at once; open files limit %d (this process and the node). The load generator shares the %d cores with the node.\n", c.Parallel, r.FDLimit, r.Machine.Cores)
	fmt.Fprintf(w, "Each size: grow the fleet, wait until every link is up and every desktop reported, settle %s, then measure the node for %s\n", c.Settle, c.Window)
	fmt.Fprintf(w, "  (VmRSS/VmHWM from /proc/PID/status, CPU from utime+stime in /proc/PID/stat; ping round trips as the node measured them, GET /api/v1/links).\n")
	t := &table{}
	t.add("links", "desktops", "joined in", "all up after", "all reported after", "node VmRSS", "per link", "VmHWM", "node CPU", "load generator", "others", "ping p50 / p99", "flaps")
	for _, s := range r.Steps {
		t.add(fmt.Sprint(s.Links), fmt.Sprint(s.Links*c.Desktops), secs(s.JoinTime), secs(s.UpTime), secs(s.Recorded),
			MiB(s.Mem.RSS), KiB(s.PerLink(r.Idle.RSS)), MiB(s.Mem.HWM),
			fmt.Sprintf("%.1f%% of a core", 100*s.NodeCores()), fmt.Sprintf("%.2f cores", s.BenchCores()), fmt.Sprintf("%.2f cores", s.OtherCores()),
			Ms(s.RTT.P50)+" / "+Ms(s.RTT.P99), fmt.Sprint(s.Flaps))
	}
	t.write(w)
	for _, s := range r.Steps {
		if s.Retries > 0 {
			fmt.Fprintf(w, "  joining up to %d links: %d joins timed out and were tried again\n", s.Want, s.Retries)
		}
	}
	last := r.Last()
	fmt.Fprintf(w, "  (the load generator, this process, had VmRSS %s at %d links)\n", MiB(last.BenchMem.RSS), last.Links)
	if last.Errors > 0 {
		fmt.Fprintf(w, "  %d links carry a last error (a report the node could not reconcile)\n", last.Errors)
	}
	fmt.Fprintf(w, "Desktops recorded by the node (GET /api/v1/desktops): %d of %d\n", r.Desktops, last.Links*c.Desktops)
	if x := r.Restart; x != nil {
		fmt.Fprintf(w, "Restart: SIGKILL to the node with %d links, started again at once on the same data directory and port:\n", last.Links)
		fmt.Fprintf(w, "  healthy %s after SIGKILL; %d links back, the last %s after SIGKILL; refusals meanwhile: %d\n",
			secs(x.Listening), x.Links, secs(x.AllBack), x.Refused)
		fmt.Fprintf(w, "  return per link after SIGKILL: p50 %s, p90 %s, p99 %s, max %s; busiest 100 ms: %d links (%.1f%%)\n",
			secs(x.Delays.P50), secs(x.Delays.P90), secs(x.Delays.P99), secs(x.Delays.Max), x.Busiest, 100*float64(x.Busiest)/float64(max(1, x.Links)))
		if x.LastRefusal != "" {
			fmt.Fprintf(w, "  the latest refusal: %s\n", x.LastRefusal)
		}
		fmt.Fprintf(w, "  links back in each second after SIGKILL: %s\n", perSecond(x.PerSecond))
		fmt.Fprintf(w, "  node afterwards: VmRSS %s (VmHWM %s); desktops recorded %d\n", MiB(x.Mem.RSS), MiB(x.Mem.HWM), x.Desktops)
	}
	if a := r.Agent; a != nil {
		fmt.Fprintf(w, "One real agent: %s with %d real desktop(s): VmRSS %s, VmHWM %s, Pss %s", a.How, a.Desktops, MiB(a.Mem.RSS), MiB(a.Mem.HWM), MiB(a.Pss))
		if a.Note != "" {
			fmt.Fprintf(w, " (%s)", a.Note)
		}
		fmt.Fprintln(w)
		if len(a.DesktopProcs) > 0 {
			var parts []string
			for _, p := range a.DesktopProcs {
				parts = append(parts, fmt.Sprintf("%s %s", p.Name, MiB(p.Pss)))
			}
			fmt.Fprintf(w, "  its desktops' processes, not counted above (Pss): %s\n", strings.Join(parts, ", "))
		}
	}
	if p := last.Profile; p != nil {
		fmt.Fprintf(w, "CPU profile of this process over the window at %d links", last.Links)
		if c.InProcess {
			fmt.Fprintf(w, " (node goroutines labelled side=node, agents side=agent: go tool pprof -tagfocus side=node -top %s)", c.CPUProfile)
		}
		fmt.Fprintln(w, ":")
		p.Write(w, 20)
	}
	if c.InProcess {
		fmt.Fprintf(w, "In-process run (for profiling): the figures mix node and load generator and are not checked against the targets.\n")
		return
	}
	r.printTargets(w)
}

func (r *LinksResult) printTargets(w io.Writer) {
	last := r.Last()
	at := ""
	if last.Links != 5000 {
		at = fmt.Sprintf(" (measured at %d links; the target is for 5,000)", last.Links)
	}
	fmt.Fprintf(w, "Targets%s:\n", at)
	fmt.Fprintf(w, "  node VmRSS <= %s with 5,000 links and 100,000 desktops: %s\n", MiB(LinksTargetRSS),
		verdict(last.Mem.RSS <= LinksTargetRSS, MiB(last.Mem.RSS)))
	fmt.Fprintf(w, "  node CPU <= %.0f%% of one core at a 1 s ping: %s\n", 100*LinksTargetCores,
		verdict(last.NodeCores() <= LinksTargetCores, fmt.Sprintf("%.1f%%", 100*last.NodeCores())))
	if x := r.Restart; x != nil {
		ok := x.Links == last.Links && x.AllBack <= LinksTargetReconnect
		fmt.Fprintf(w, "  every link back within %s of a restart: %s\n", LinksTargetReconnect, verdict(ok, fmt.Sprintf("%d links, the last after %s", x.Links, secs(x.AllBack))))
	}
	if a := r.Agent; a != nil {
		fmt.Fprintf(w, "  one real lobby agent <= %s VmRSS: %s\n", MiB(AgentTargetRSS), verdict(a.Mem.RSS <= AgentTargetRSS, MiB(a.Mem.RSS)))
	}
}

// KiB formats bytes as kibibytes.
func KiB(b int64) string { return fmt.Sprintf("%.0f KiB", float64(b)/(1<<10)) }

func secs(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }

// perSecond writes counts as "0-1 s: 0, 1-2 s: 12, ...".
func perSecond(counts []int) string {
	parts := make([]string, len(counts))
	for i, n := range counts {
		parts[i] = fmt.Sprintf("%d-%d s: %d", i, i+1, n)
	}
	return strings.Join(parts, ", ")
}
