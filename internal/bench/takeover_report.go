package bench

import (
	"context"
	"fmt"
	"io"
	"time"
)

// Worst is the longest time to run every job elsewhere and to a new
// leader over the rounds, and how many starts ran twice.
func (r *TakeoverResult) Worst() (jobs, leader time.Duration, twice int) {
	for _, x := range r.Rounds {
		jobs, leader = max(jobs, x.All), max(leader, x.Leader)
		twice += max(0, x.Starts-r.Config.Jobs)
	}
	return jobs, leader, twice
}

// Print writes the report.
func (r *TakeoverResult) Print(w io.Writer) {
	c := r.Config
	fmt.Fprintf(w, "lobby bench takeover: a node dies (SIGKILL) while %d of its jobs run; how long until they run elsewhere, and until a new leader\n", c.Jobs)
	fmt.Fprintf(w, "Machine: %s\n", r.Machine)
	fmt.Fprintf(w, "Cluster: %d node processes, e.g. %s (LOBBY_CLUSTER_KEY set), on %s; a fresh schema per round\n", c.Nodes, r.NodeHow, r.Store)
	takeover := "3s (the default)"
	if c.JobTakeover > 0 {
		takeover = c.JobTakeover.String()
	}
	fmt.Fprintf(w, "         --job-takeover %s; heartbeats every 1 s; the singleton lease lasts 4 s, renewed every 1 s\n", takeover)
	if r.Balancer != "" {
		fmt.Fprintf(w, "Balancer: %s in front of the nodes, option httpchk GET /readyz, default-server %s (its statistics page polled)\n", r.Balancer, balancerCheck)
	}
	fmt.Fprintf(w, "Host:    one agent in this process (package agent, the real protocol, its default ping and backoff), linked to the victim first and\n")
	fmt.Fprintf(w, "         to the others next; a memory provider whose desktop starts wait until the measurement is over (a slow host)\n")
	fmt.Fprintf(w, "Each round: start the cluster (site 1 first, so it leads), start %d desktops through the victim's API (jobs owned by the victim's\n", c.Jobs)
	fmt.Fprintf(w, "  site, all on the host), SIGKILL the victim, then ask a survivor every %s: GET /api/v1/nodes (a live leader), GET /api/v1/jobs?state=running\n", c.Poll)
	fmt.Fprintf(w, "  (each job running with a survivor's site ID), the agent's link and HAProxy's status of the victim; then let the host finish and count the\n")
	fmt.Fprintf(w, "  starts it ran.\n")
	t := &table{}
	t.add("round", "victim", "new leader", "agent relinked", "balancer: down", "first job elsewhere", "every job elsewhere", "completed", "host starts")
	for i, x := range r.Rounds {
		victim, leader := fmt.Sprintf("site %d", x.Victim), "-"
		if x.WasLeader {
			victim += " (leader)"
			leader = secs(x.Leader)
		}
		down := "-"
		if x.Balancer > 0 {
			down = secs(x.Balancer)
		}
		t.add(fmt.Sprint(i+1), victim, leader, secs(x.Relinked), down, secs(x.First), secs(x.All),
			fmt.Sprintf("%d/%d", x.Completed, c.Jobs), fmt.Sprint(x.Starts))
	}
	t.write(w)
	jobs, leader, twice := r.Worst()
	fmt.Fprintf(w, "Targets:\n")
	fmt.Fprintf(w, "  jobs running elsewhere <= %s after a node's death: worst %s, %s\n", secs(TakeoverTarget), secs(jobs), verdict(jobs > 0 && jobs <= TakeoverTarget, "over"))
	if leader > 0 {
		fmt.Fprintf(w, "  a new leader <= %s after the leader's death: worst %s, %s\n", secs(TakeoverTarget), secs(leader), verdict(leader <= TakeoverTarget, "over"))
	}
	fmt.Fprintf(w, "  no job run twice: %d starts beyond one per job, %s\n", twice, verdict(twice == 0, "a job ran twice"))
}

// allTakeover runs the takeover benchmark briefly (two rounds: the
// leader, then another node) for RunAll and adds its rows to the summary.
func allTakeover(ctx context.Context, cfg AllConfig, w io.Writer, sum *table, step func(string, func() error)) {
	if cfg.Binary == "" {
		return // the nodes run as child processes
	}
	step("takeover", func() error {
		r, err := RunTakeover(ctx, TakeoverConfig{Binary: cfg.Binary, Rounds: 2, Jobs: 4,
			Postgres: cfg.Node.Postgres, DataDir: cfg.Node.DataDir, Log: cfg.Log})
		if r == nil {
			return err
		}
		r.Print(w)
		jobs, leader, twice := r.Worst()
		sum.add("takeover: jobs elsewhere, new leader after SIGKILL", fmt.Sprintf("%s, %s; %d run twice", secs(jobs), secs(leader), twice),
			"<= "+secs(TakeoverTarget)+" each, none twice",
			verdict(jobs > 0 && jobs <= TakeoverTarget && leader <= TakeoverTarget && twice == 0, "see report"))
		return err
	})
}
