package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// AllConfig configures RunAll.
type AllConfig struct {
	// Node's DataDir and Postgres apply to every node RunAll starts; the
	// PostgreSQL run uses Postgres, else TEST_DATABASE_URL, else a
	// throwaway server.
	Node NodeConfig
	// Binary is the lobby executable for the memory benchmark's child
	// node (empty measures in this process) and for the links, takeover
	// and cluster benchmarks' nodes (empty skips them).
	Binary string
	Log    io.Writer
}

// RunAll runs every benchmark briefly, writing each report to w and a
// summary at the end. A failing benchmark does not stop the others; their
// errors are returned together.
func RunAll(ctx context.Context, cfg AllConfig, w io.Writer) error {
	var errs []error
	sum := &table{}
	sum.add("benchmark", "figure", "target", "verdict")
	step := func(name string, run func() error) {
		if ctx.Err() != nil {
			return
		}
		fmt.Fprintf(w, "\n== %s ==\n", name)
		if err := run(); err != nil {
			fmt.Fprintf(w, "FAILED: %v\n", err)
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			sum.add(name, "failed", "", err.Error())
		}
	}
	step("memory", func() error {
		r, err := RunMemory(ctx, MemoryConfig{Binary: cfg.Binary, Settle: 2 * time.Second, Log: cfg.Log})
		if r == nil {
			return err
		}
		r.Print(w)
		sum.add("memory: idle node VmRSS", MiB(r.Node.RSS), "<= "+MiB(NodeTargetRSS), verdict(r.Node.RSS <= NodeTargetRSS, "over"))
		if len(r.Desktop) > 0 {
			sum.add("memory: one desktop Pss", MiB(r.DesktopPss()), "Xvnc ~"+MiB(XvncIdlePss), "reference")
		}
		return err
	})
	for _, st := range []string{"sqlite", "postgres"} {
		step("assign ("+st+")", func() error {
			nc := cfg.Node
			nc.Store = st
			r, err := RunAssign(ctx, AssignConfig{Node: nc, Users: 128, Desktops: 32, Concurrency: 16, Duration: 5 * time.Second, Warmup: time.Second, Log: cfg.Log})
			if r == nil {
				return err
			}
			r.Print(w)
			sum.add("assign ("+st+"): assignments/s, connect p99", fmt.Sprintf("%.0f/s, %s", r.Rate(), Ms(r.Connect.P99)),
				fmt.Sprintf(">= %.0f/s, <= %s (SQLite)", AssignTargetRate, Ms(AssignTargetP99)),
				verdict(r.Rate() >= AssignTargetRate && r.Connect.P99 <= AssignTargetP99, "see report"))
			return err
		})
	}
	step("login", func() error {
		r, err := RunLogin(ctx, LoginConfig{Node: cfg.Node, Users: 1000, InFlight: 256, Log: cfg.Log})
		if r == nil {
			return err
		}
		r.Print(w)
		sum.add("login: 1000 sign-ins vs the argon2id floor", fmt.Sprintf("%.2f s vs %.2f s (%+.0f%%)", r.Total.Seconds(), r.Floor.Seconds(), 100*r.OverFloor()),
			fmt.Sprintf("within %.0f%%", 100*LoginTargetOverFloor), verdict(r.OverFloor() <= LoginTargetOverFloor, "over"))
		return err
	})
	step("gateway", func() error {
		r, err := RunGateway(ctx, GatewayConfig{Node: cfg.Node, Duration: 3 * time.Second, Pings: 2000, Log: cfg.Log})
		if r == nil {
			return err
		}
		r.Print(w)
		l, ws := r.rate(PathLobby).MiBps(), r.rate(PathWebsockify).MiBps()
		l50, _ := r.Added(PathLobby)
		w50, _ := r.Added(PathWebsockify)
		sum.add("gateway: MiB/s, added p50", fmt.Sprintf("%.0f MiB/s, %s", l, Us(l50)),
			fmt.Sprintf("websockify: %.0f MiB/s, %s", ws, Us(w50)), verdict(l >= ws && l50 < w50, "see report"))
		return err
	})
	allLinks(ctx, cfg, w, sum, step)
	allTakeover(ctx, cfg, w, sum, step)
	allCluster(ctx, cfg, w, sum, step)
	fmt.Fprintf(w, "\n== summary ==\nMachine: %s\n", ReadMachine())
	sum.write(w)
	return errors.Join(errs...)
}
