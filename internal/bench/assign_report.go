package bench

import (
	"fmt"
	"io"
	"time"
)

// Targets of the assign benchmark (on SQLite).
const (
	AssignTargetRate = 5000.0
	AssignTargetP99  = 20 * time.Millisecond
)

// Print writes the report.
func (r *AssignResult) Print(w io.Writer) {
	c := r.Config
	fmt.Fprintf(w, "lobby bench assign: POST /connect then POST /release in a loop\n")
	fmt.Fprintf(w, "Machine: %s\n", r.Machine)
	fmt.Fprintf(w, "Node:    in this process (server.New, memory provider: synthetic desktops, plain HTTP on 127.0.0.1)\n")
	fmt.Fprintf(w, "Store:   %s\n", r.StoreInfo)
	fmt.Fprintf(w, "Load:    %d client goroutines in the same process as the node (sharing its %d cores), keep-alive HTTP/1.1 over loopback TCP;\n", c.Concurrency, r.Machine.Cores)
	fmt.Fprintf(w, "         %d users signed in beforehand (tokens from auth.Service.IssueToken, what POST /login issues after the password check),\n", c.Users)
	fmt.Fprintf(w, "         pool of %d desktops; client i acts for users i, i+%d, ...; %s measured after %s warm-up (setup took %s)\n",
		c.Desktops, c.Concurrency, c.Duration, c.Warmup, r.Setup.Round(time.Millisecond))
	t := &table{}
	t.add("result", "value")
	t.add("assignments (connect answered 200)", fmt.Sprint(r.Assignments))
	t.add("assignments per second", fmt.Sprintf("%.0f", r.Rate()))
	t.add("refused (409, pool empty)", fmt.Sprint(r.Refused))
	t.add("errors", fmt.Sprint(r.Errors))
	t.write(w)
	if r.FirstError != "" {
		fmt.Fprintf(w, "  first error: %s\n", r.FirstError)
	}
	t = &table{}
	t.add(latencyHeader...)
	t.add(latencyRow("connect", r.Connect)...)
	t.add(latencyRow("release", r.Release)...)
	t.write(w)
	rateOK, p99OK := r.Rate() >= AssignTargetRate, r.Connect.P99 <= AssignTargetP99
	fmt.Fprintf(w, "Target (SQLite): >= %.0f assignments/s: %s; connect p99 <= %s: %s\n",
		AssignTargetRate, verdict(rateOK, fmt.Sprintf("%.0f/s is %.0f%% short", r.Rate(), 100*(1-r.Rate()/AssignTargetRate))),
		Ms(AssignTargetP99), verdict(p99OK, fmt.Sprintf("%s is %.1fx the target", Ms(r.Connect.P99), float64(r.Connect.P99)/float64(AssignTargetP99))))
	fmt.Fprintf(w, "Memory (VmRSS of this process: node and load generator together, nothing subtracted): start %s, after setup %s, after load %s; peak (VmHWM) %s\n",
		MiB(r.MemStart.RSS), MiB(r.MemSetup.RSS), MiB(r.MemAfter.RSS), MiB(r.MemAfter.HWM))
	if r.WriterWaits > 0 {
		fmt.Fprintf(w, "SQLite writer connection: requests waited for it %d times, %.2f s in all, %s per assignment (database/sql DBStats)\n",
			r.WriterWaits, r.WriterWait.Seconds(), Ms(r.WriterWait/time.Duration(max(1, r.Assignments))))
	}
	if r.Groups > 0 {
		fmt.Fprintf(w, "SQLite group commit: %d transactions and single writes in %d database transactions, %.1f per commit\n",
			r.GroupedTxs, r.Groups, float64(r.GroupedTxs)/float64(r.Groups))
	}
	if r.CPU != nil && r.Assignments > 0 {
		per := (r.CPU.CPU + r.CPU.Children) / time.Duration(r.Assignments)
		who := "node + load generator"
		if r.CPU.Children > 0 {
			who += " + PostgreSQL"
		}
		fmt.Fprintf(w, "CPU per assignment (one connect and one release; %s): %s, so at most %.0f/s if the %d cores did nothing else\n",
			who, Ms(per), float64(r.Machine.Cores)/per.Seconds(), r.Machine.Cores)
		if c.Node.Store == "postgres" && r.CPU.Children == 0 {
			fmt.Fprintf(w, "  (PostgreSQL runs outside this process tree here, from --postgres or TEST_DATABASE_URL: its CPU is under other processes, not in the figure above)\n")
		}
	}
	r.CPU.Write(w, 15)
	if c.CPUProfile != "" {
		fmt.Fprintf(w, "CPU profile of the measured phase: %s (go tool pprof -top %s)\n", c.CPUProfile, c.CPUProfile)
	}
}
