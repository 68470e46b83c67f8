package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"lobby/internal/auth"
	"lobby/internal/bench"
)

const benchUsage = `usage: lobby bench <name> [flags]

Benchmarks that start what they measure on this machine (loopback only) and
print a table with the machine they ran on. See BENCHMARKS.md.

  assign    connect+release assignment rate and latency of an in-process node
  login     a start-of-day sign-in storm against the argon2id floor
  hash      argon2id settings compared: one hash alone, and every core hashing at once
  gateway   /gateway/vnc throughput and added latency next to websockify
  memory    RSS of an idle lobby dev node and Pss of one real desktop
  link      console throughput and added latency through an agent's link, next to websockify
  links     one node process holding thousands of agent links: memory, CPU, restart
  takeover  a node killed while its jobs run: time until they run elsewhere, and a new leader
  cluster   connect+release rate and latency through HAProxy with 1, 2 and 3 nodes on one PostgreSQL
  all       each of them briefly (make bench)

Run lobby bench <name> -h for its flags.
`

// runBench runs `lobby bench NAME [flags]`.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, benchUsage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	name, args := args[0], args[1:]
	fs := flag.NewFlagSet("lobby bench "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	quiet := fs.Duration("wait-quiet", 0, "first wait up to this long for other processes to use under 0.15 cores (the machine is shared)")
	var run func() error
	switch name {
	case "assign":
		run = benchAssign(ctx, fs, stdout, stderr)
	case "login":
		run = benchLogin(ctx, fs, stdout, stderr)
	case "hash":
		run = benchHash(ctx, fs, stdout, stderr)
	case "gateway":
		run = benchGateway(ctx, fs, stdout, stderr)
	case "memory":
		run = benchMemory(ctx, fs, stdout, stderr)
	case "link":
		run = benchLink(ctx, fs, stdout, stderr)
	case "links":
		run = benchLinks(ctx, fs, stdout, stderr)
	case "takeover":
		run = benchTakeover(ctx, fs, stdout, stderr)
	case "cluster":
		run = benchCluster(ctx, fs, stdout, stderr)
	case "all":
		run = benchAll(ctx, fs, stdout, stderr)
	default:
		fmt.Fprintf(stderr, "lobby bench: unknown benchmark %q\n\n%s", name, benchUsage)
		return 2
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "lobby bench %s: unexpected argument %q: options are flags, see -h\n", name, fs.Arg(0))
		return 2
	}
	if *quiet > 0 {
		load, ok, err := bench.WaitQuiet(ctx, 0.15, *quiet)
		if err != nil {
			return 1
		}
		if !ok {
			fmt.Fprintf(stderr, "lobby bench %s: other processes still use %.2f cores after %s; measuring anyway\n", name, load, *quiet)
		}
	}
	if err := run(); err != nil {
		fmt.Fprintf(stderr, "lobby bench %s: %v\n", name, err)
		return 1
	}
	return 0
}

// nodeFlags registers the flags that choose the node's store.
func nodeFlags(fs *flag.FlagSet, c *bench.NodeConfig) {
	fs.StringVar(&c.Store, "store", "sqlite", "sqlite or postgres")
	fs.StringVar(&c.Postgres, "postgres", "", "PostgreSQL URL for --store postgres (default TEST_DATABASE_URL, else a throwaway server)")
	fs.StringVar(&c.DataDir, "data", "", "directory under which the node's data directory is made (default the system temporary directory)")
}

func benchAssign(ctx context.Context, fs *flag.FlagSet, stdout, stderr io.Writer) func() error {
	c := bench.AssignConfig{Log: stderr}
	nodeFlags(fs, &c.Node)
	fs.IntVar(&c.Users, "users", 256, "users signed in beforehand (at least --concurrency)")
	fs.IntVar(&c.Desktops, "desktops", 64, "desktops in the pool")
	fs.IntVar(&c.Concurrency, "concurrency", 16, "client goroutines, each looping connect then release")
	fs.DurationVar(&c.Duration, "duration", 10e9, "measured phase")
	fs.DurationVar(&c.Warmup, "warmup", 2e9, "unmeasured phase before it")
	fs.StringVar(&c.CPUProfile, "cpuprofile", "", "write a CPU profile of the measured phase to FILE (go tool pprof -top FILE)")
	fs.StringVar(&c.Trace, "trace", "", "write an execution trace of the measured phase to FILE (go tool trace FILE)")
	return func() error {
		r, err := bench.RunAssign(ctx, c)
		if r != nil {
			r.Print(stdout)
		}
		return err
	}
}

func benchLogin(ctx context.Context, fs *flag.FlagSet, stdout, stderr io.Writer) func() error {
	c := bench.LoginConfig{Log: stderr}
	nodeFlags(fs, &c.Node)
	fs.IntVar(&c.Users, "users", 10000, "people in the storm, each signing in once")
	fs.IntVar(&c.InFlight, "inflight", 256, "people signing in at once")
	fs.IntVar(&c.Desktops, "desktops", 0, "pool size (default inflight+16; each desktop is released after connect)")
	fs.StringVar(&c.CPUProfile, "cpuprofile", "", "write a CPU profile of the storm to FILE")
	fs.Var(&c.Node.PasswordHash, "password-hash", "the node's argon2id settings, m=KiB,t=passes,p=lanes (default the node's)")
	fs.StringVar(&c.SlowDump, "slow-dump", "", "write every goroutine to FILE once a connect or release takes over 2 s")
	return func() error {
		r, err := bench.RunLogin(ctx, c)
		if r != nil {
			r.Print(stdout)
		}
		return err
	}
}

func benchHash(ctx context.Context, fs *flag.FlagSet, stdout, stderr io.Writer) func() error {
	c := bench.HashConfig{Log: stderr}
	var sets paramsList
	fs.Var(&sets, "set", "an argon2id setting to compare, m=KiB,t=passes,p=lanes (repeat; default OWASP's five)")
	fs.IntVar(&c.Runs, "runs", 32, "verifications timed per goroutine, set and round")
	fs.IntVar(&c.Rounds, "rounds", 3, "rounds, the sets interleaved")
	return func() error {
		c.Sets = sets
		r, err := bench.RunHash(ctx, c)
		if r != nil {
			r.Print(stdout)
		}
		return err
	}
}

// paramsList is a repeatable flag of argon2id settings.
type paramsList []auth.Params

func (l *paramsList) String() string { return fmt.Sprint([]auth.Params(*l)) }

func (l *paramsList) Set(s string) error {
	var p auth.Params
	if err := p.Set(s); err != nil {
		return err
	}
	*l = append(*l, p)
	return nil
}

func benchGateway(ctx context.Context, fs *flag.FlagSet, stdout, stderr io.Writer) func() error {
	c := bench.GatewayConfig{Log: stderr}
	fs.DurationVar(&c.Duration, "duration", 5e9, "throughput measurement per path")
	fs.IntVar(&c.Pings, "pings", 3000, "latency round trips per path")
	fs.IntVar(&c.Outstanding, "outstanding", 2, "full-frame requests the throughput client keeps in flight")
	fs.BoolVar(&c.Synthetic, "synthetic", false, "measure latency against a 1x1 synthetic source even when Xvnc is installed")
	fs.StringVar(&c.CPUProfile, "cpuprofile", "", "write a CPU profile of Lobby's throughput phase to FILE")
	return func() error {
		r, err := bench.RunGateway(ctx, c)
		if r != nil {
			r.Print(stdout)
		}
		return err
	}
}

func benchMemory(ctx context.Context, fs *flag.FlagSet, stdout, stderr io.Writer) func() error {
	c := bench.MemoryConfig{Log: stderr}
	inProcess := fs.Bool("in-process", false, "measure a node in this process instead of a child `lobby dev`")
	fs.DurationVar(&c.Settle, "settle", 3e9, "how long the node and the desktop run before they are measured")
	fs.BoolVar(&c.NoDesktop, "no-desktop", false, "skip the desktop's Pss")
	return func() error {
		if !*inProcess {
			exe, err := os.Executable()
			if err != nil {
				return fmt.Errorf("find the lobby binary (or use --in-process): %w", err)
			}
			c.Binary = exe
		}
		r, err := bench.RunMemory(ctx, c)
		if r != nil {
			r.Print(stdout)
		}
		return err
	}
}

func benchAll(ctx context.Context, fs *flag.FlagSet, stdout, stderr io.Writer) func() error {
	c := bench.AllConfig{Log: stderr}
	fs.StringVar(&c.Node.Postgres, "postgres", "", "PostgreSQL URL for the postgres run (default TEST_DATABASE_URL, else a throwaway server)")
	fs.StringVar(&c.Node.DataDir, "data", "", "directory under which nodes' data directories are made")
	return func() error {
		if exe, err := os.Executable(); err == nil {
			c.Binary = exe
		}
		return bench.RunAll(ctx, c, stdout)
	}
}

func benchLinks(ctx context.Context, fs *flag.FlagSet, stdout, stderr io.Writer) func() error {
	c := bench.LinksConfig{Log: stderr}
	fs.IntVar(&c.Links, "links", 5000, "agent links the node holds at the end")
	steps := fs.String("steps", "", "smaller sizes to measure on the way, e.g. 500,1000,2000 (the curve)")
	fs.IntVar(&c.Desktops, "desktops", 20, "desktops each agent reports")
	fs.DurationVar(&c.Ping, "ping", time.Second, "the links' ping interval")
	fs.DurationVar(&c.Window, "window", time.Minute, "steady window in which the node is measured at each size")
	fs.DurationVar(&c.Settle, "settle", 10*time.Second, "wait after every desktop is reported, before the window")
	fs.IntVar(&c.Parallel, "parallel", 32, "agents joining at once")
	fs.BoolVar(&c.NoRestart, "no-restart", false, "skip killing and restarting the node")
	fs.IntVar(&c.AgentDesktops, "agent-desktops", 2, "real local desktops (Xvnc) on the one real lobby agent measured; -1 skips it")
	fs.StringVar(&c.DataDir, "data", "", "directory under which the temporary directories are made")
	fs.BoolVar(&c.InProcess, "in-process", false, "run the node in this process, for --cpuprofile (labels side=node|agent); no restart, figures mix node and load")
	fs.StringVar(&c.CPUProfile, "cpuprofile", "", "write a CPU profile of this process over the window at the largest size to FILE")
	return func() error {
		var err error
		if c.Steps, err = parseSizes("--steps", *steps); err != nil {
			return err
		}
		if c.Binary, err = os.Executable(); err != nil {
			return fmt.Errorf("find the lobby binary: %w", err)
		}
		r, err := bench.RunLinks(ctx, c)
		if r != nil {
			r.Print(stdout)
		}
		return err
	}
}

func benchTakeover(ctx context.Context, fs *flag.FlagSet, stdout, stderr io.Writer) func() error {
	c := bench.TakeoverConfig{Log: stderr}
	fs.IntVar(&c.Nodes, "nodes", 3, "lobby server processes on one PostgreSQL")
	fs.IntVar(&c.Jobs, "jobs", 8, "jobs running on the node that is killed")
	fs.IntVar(&c.Rounds, "rounds", 4, "kills measured, each on a fresh cluster: odd rounds kill the leader, even ones another node")
	fs.StringVar(&c.Postgres, "postgres", "", "PostgreSQL URL (default TEST_DATABASE_URL, else a throwaway server)")
	fs.DurationVar(&c.JobTakeover, "job-takeover", 0, "the nodes' --job-takeover (default theirs)")
	fs.DurationVar(&c.Poll, "poll", 25*time.Millisecond, "how often a survivor is asked")
	fs.BoolVar(&c.NoBalancer, "no-balancer", false, "do not put HAProxy in front of the nodes (it is left out anyway when not installed)")
	fs.StringVar(&c.DataDir, "data", "", "directory under which the temporary directories are made")
	return func() error {
		var err error
		if c.Binary, err = os.Executable(); err != nil {
			return fmt.Errorf("find the lobby binary: %w", err)
		}
		r, err := bench.RunTakeover(ctx, c)
		if r != nil {
			r.Print(stdout)
		}
		return err
	}
}

func benchCluster(ctx context.Context, fs *flag.FlagSet, stdout, stderr io.Writer) func() error {
	c := bench.ClusterConfig{Log: stderr}
	nodes := fs.String("nodes", "1,2,3", "cluster sizes measured, each with fresh nodes on a fresh schema")
	fs.IntVar(&c.Users, "users", 256, "users created and signed in beforehand (at least --concurrency)")
	fs.IntVar(&c.Desktops, "desktops", 64, "desktops in the pool")
	fs.IntVar(&c.Concurrency, "concurrency", 16, "client goroutines, each looping connect then release")
	fs.DurationVar(&c.Duration, "duration", 10*time.Second, "measured phase per size")
	fs.DurationVar(&c.Warmup, "warmup", 2*time.Second, "unmeasured phase before it")
	fs.StringVar(&c.Postgres, "postgres", "", "PostgreSQL URL (default TEST_DATABASE_URL, else a throwaway server)")
	fs.StringVar(&c.CPUProfile, "cpuprofile", "", "run site 1 in this process and write a CPU profile of each measured phase to FILE, the size added (FILE-3nodes)")
	fs.StringVar(&c.DataDir, "data", "", "directory under which the temporary directories are made")
	return func() error {
		var err error
		if c.Nodes, err = parseSizes("--nodes", *nodes); err != nil {
			return err
		}
		if c.Binary, err = os.Executable(); err != nil {
			return fmt.Errorf("find the lobby binary: %w", err)
		}
		r, err := bench.RunCluster(ctx, c)
		if r != nil {
			r.Print(stdout)
		}
		return err
	}
}

// parseSizes reads a comma-separated list of counts.
func parseSizes(name, s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%s: %q is not a count: give whole numbers from 1 up, separated by commas (e.g. 1,2,3)", name, f)
		}
		out = append(out, n)
	}
	return out, nil
}

func benchLink(ctx context.Context, fs *flag.FlagSet, stdout, stderr io.Writer) func() error {
	c := bench.LinkConfig{GatewayConfig: bench.GatewayConfig{Log: stderr}}
	fs.DurationVar(&c.Duration, "duration", 5e9, "throughput measurement per path")
	fs.IntVar(&c.Pings, "pings", 3000, "latency round trips per path")
	fs.IntVar(&c.Outstanding, "outstanding", 2, "full-frame requests the throughput client keeps in flight")
	fs.BoolVar(&c.Synthetic, "synthetic", false, "measure latency against a 1x1 synthetic source even when Xvnc is installed")
	fs.DurationVar(&c.LinkPing, "ping", 0, "the agent's link ping interval (default the agent's)")
	fs.BoolVar(&c.NoDesktop, "no-desktop", false, "skip the real desktop (a lobby agent process running Xvnc)")
	fs.StringVar(&c.CPUProfile, "cpuprofile", "", "write a CPU profile of the link path's throughput phase to FILE")
	return func() error {
		if exe, err := os.Executable(); err == nil {
			c.Binary = exe
		}
		r, err := bench.RunLink(ctx, c)
		if r != nil {
			r.Print(stdout)
		}
		return err
	}
}
