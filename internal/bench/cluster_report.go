package bench

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"
)

// Print writes the report.
func (r *ClusterResult) Print(w io.Writer) {
	c := r.Config
	sizes := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		sizes[i] = fmt.Sprint(n)
	}
	fmt.Fprintf(w, "lobby bench cluster: POST /connect then POST /release in a loop through HAProxy, with %s nodes on one PostgreSQL\n", strings.Join(sizes, ", "))
	fmt.Fprintf(w, "Machine: %s\n", r.Machine)
	fmt.Fprintf(w, "         every process below shares these %d cores: nodes, PostgreSQL, HAProxy and the load generator\n", r.Machine.Cores)
	fmt.Fprintf(w, "Cluster: node processes, e.g. %s (LOBBY_CLUSTER_KEY set),\n", r.NodeHow)
	fmt.Fprintf(w, "         on %s; a fresh schema and fresh nodes per size\n", r.Store)
	if c.CPUProfile != "" {
		fmt.Fprintf(w, "         site 1 runs in this process (server.New, as lobby server runs it) for the CPU profile: its CPU is under \"this process\"\n")
	}
	fmt.Fprintf(w, "Balancer: %s, balance roundrobin (each request), option httpchk GET /readyz, default-server %s, keep-alive on both sides\n", r.Balancer, balancerCheck)
	fmt.Fprintf(w, "Hosts:   one agent per node in this process (package agent, the real link protocol; memory provider), node i its first hub;\n")
	fmt.Fprintf(w, "         the pool's %d desktops are created on them by the cluster (min_size = min_free = max_size)\n", c.Desktops)
	fmt.Fprintf(w, "Load:    %d client goroutines in this process, keep-alive HTTP/1.1 to HAProxy; %d users created and signed in once (POST /api/v1/login)\n", c.Concurrency, c.Users)
	fmt.Fprintf(w, "         through HAProxy; client i acts for users i, i+%d, ...; %s measured after %s warm-up; a request the network or a node\n", c.Concurrency, c.Duration, c.Warmup)
	fmt.Fprintf(w, "         failed (no answer, 5xx) is sent once more after 200 ms, as a client would\n")
	t := &table{}
	t.add("nodes", "assignments/s", "connect p50", "p90", "p99", "max", "release p50", "p99", "refused", "retried (then ok)", "errors", "setup")
	for _, s := range r.Steps {
		t.add(fmt.Sprint(s.Nodes), fmt.Sprintf("%.0f", s.Rate()), Ms(s.Connect.P50), Ms(s.Connect.P90), Ms(s.Connect.P99), Ms(s.Connect.Max),
			Ms(s.Release.P50), Ms(s.Release.P99), fmt.Sprint(s.Refused), fmt.Sprintf("%d (%d)", s.Retried, s.RetriedOK), fmt.Sprint(s.Errors),
			s.Setup.Round(100*time.Millisecond).String())
	}
	t.write(w)
	for _, s := range r.Steps {
		if s.FirstError != "" {
			fmt.Fprintf(w, "  %d nodes, first error: %s\n", s.Nodes, s.FirstError)
		}
	}
	r.printCPU(w)
	t = &table{}
	t.add("nodes", "connects answered 200", "desktop.assign events", "desktop.release events", "held by two at once", "assignments left")
	for _, s := range r.Steps {
		h := s.Check
		t.add(fmt.Sprint(s.Nodes), fmt.Sprint(h.Connects), fmt.Sprint(h.Assigns), fmt.Sprint(h.Releases), fmt.Sprint(h.Twice), fmt.Sprint(h.Left))
	}
	fmt.Fprintf(w, "The store afterwards (audit log in the database's order, and the assignments table):\n")
	t.write(w)
	for _, s := range r.Steps {
		if s.Check.First != "" {
			fmt.Fprintf(w, "  %d nodes: %s\n", s.Nodes, s.Check.First)
		}
	}
	errs, twice := r.failed()
	fmt.Fprintf(w, "Targets:\n")
	fmt.Fprintf(w, "  no failed user request beyond one retry: %d failed, %s\n", errs, verdict(errs == 0 && len(r.Steps) == len(c.Nodes), "see above"))
	fmt.Fprintf(w, "  no desktop held by two people: %d times, %s\n", twice, verdict(twice == 0 && len(r.Steps) > 0, "see above"))
	for _, s := range r.Steps {
		if s.Profile != nil {
			fmt.Fprintf(w, "CPU profile with %d nodes (this process: site 1, labelled side=node, and the load generator): %s\n", s.Nodes, profilePath(c.CPUProfile, s.Nodes))
			fmt.Fprintf(w, "  (go tool pprof -tagfocus side=node -top FILE for the node alone)\n")
			s.Profile.Write(w, 15)
		}
	}
}

// printCPU writes where the CPU went, per process.
func (r *ClusterResult) printCPU(w io.Writer) {
	fmt.Fprintf(w, "CPU in cores (/proc/PID/stat; PostgreSQL: its server process and backends):\n")
	t := &table{}
	t.add("nodes", "phase", "each node", "nodes", "PostgreSQL", "HAProxy", "this process", "all of these", "other processes", "CPU per assignment", "so at most", "context switches/s")
	for _, s := range r.Steps {
		t.add(r.cpuRow(s, "idle", s.Idle)...)
		t.add(r.cpuRow(s, "load", s.CPU)...)
	}
	t.write(w)
	fmt.Fprintf(w, "  (idle: the cluster before the load, nobody using it; this process: the load generator and the agents; CPU per assignment:\n")
	fmt.Fprintf(w, "  all of these over the assignments; so at most: the rate if the %d cores did nothing else; context switches: the machine's, /proc/stat)\n", r.Machine.Cores)
	for _, s := range r.Steps {
		if s.CPU.Postgres < 0 {
			fmt.Fprintf(w, "  PostgreSQL's processes were not found (not on a loopback TCP port of this machine): its CPU is under other processes\n")
			break
		}
	}
}

// cpuRow is a row of printCPU's table.
func (r *ClusterResult) cpuRow(s ClusterStep, phase string, x ClusterCPU) []string {
	each := make([]string, len(x.Nodes))
	for i, v := range x.Nodes {
		each[i] = fmt.Sprintf("%.2f", v)
		if i == 0 && r.Config.CPUProfile != "" {
			each[i] = "(here)"
		}
	}
	pg, lb := "?", "?"
	if x.Postgres >= 0 {
		pg = fmt.Sprintf("%.2f", x.Postgres)
	}
	if x.Balancer >= 0 {
		lb = fmt.Sprintf("%.2f", x.Balancer)
	}
	per, most, switches := "-", "-", fmt.Sprintf("%.0f", x.Switches)
	if s.Assignments > 0 && phase == "load" {
		switches += fmt.Sprintf(" (%.1f per assignment)", x.Switches/s.Rate())
		d := time.Duration(x.Total() * float64(x.Wall) / float64(s.Assignments))
		per = Ms(d)
		most = fmt.Sprintf("%.0f/s", float64(r.Machine.Cores)/d.Seconds())
	}
	return []string{fmt.Sprint(s.Nodes), phase, strings.Join(each, " "), fmt.Sprintf("%.2f", x.NodesTotal()), pg, lb,
		fmt.Sprintf("%.2f", x.Bench), fmt.Sprintf("%.2f", x.Total()), fmt.Sprintf("%.2f", x.Other), per, most, switches}
}

// failed counts requests that failed after the retry and desktops held
// twice over the steps.
func (r *ClusterResult) failed() (errs, twice int) {
	for _, s := range r.Steps {
		errs += s.Errors
		twice += s.Check.Twice
	}
	return errs, twice
}

// allCluster runs the cluster benchmark briefly (1 and 3 nodes, 2 s each
// after 0.5 s of warm-up: about 20 s with the setup) for RunAll and adds
// its row to the summary.
func allCluster(ctx context.Context, cfg AllConfig, w io.Writer, sum *table, step func(string, func() error)) {
	if cfg.Binary == "" || haproxyBinary() == "" {
		return // the nodes run as child processes, behind HAProxy
	}
	step("cluster", func() error {
		r, err := RunCluster(ctx, ClusterConfig{Binary: cfg.Binary, Nodes: []int{1, 3}, Users: 32, Desktops: 32, Concurrency: 16,
			Duration: 2 * time.Second, Warmup: time.Second / 2, Postgres: cfg.Node.Postgres, DataDir: cfg.Node.DataDir, Log: cfg.Log})
		if r == nil {
			return err
		}
		r.Print(w)
		var rates []string
		for _, s := range r.Steps {
			rates = append(rates, fmt.Sprintf("%d: %.0f/s %s", s.Nodes, s.Rate(), Ms(s.Connect.P99)))
		}
		errs, twice := r.failed()
		sum.add("cluster: nodes: assignments/s, p99 via HAProxy", strings.Join(rates, ", "), "no request failed, none held twice",
			verdict(err == nil && errs == 0 && twice == 0, "see report"))
		return err
	})
}
