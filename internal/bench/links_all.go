package bench

import (
	"context"
	"fmt"
	"io"
	"time"
)

// allLinks runs the link and links benchmarks briefly for RunAll and adds
// their rows to its summary.
func allLinks(ctx context.Context, cfg AllConfig, w io.Writer, sum *table, step func(string, func() error)) {
	step("link", func() error {
		r, err := RunLink(ctx, LinkConfig{
			GatewayConfig: GatewayConfig{Node: cfg.Node, Duration: 2 * time.Second, Pings: 1000, Log: cfg.Log},
			NoDesktop:     true,
		})
		if r == nil {
			return err
		}
		r.Print(w)
		l, ws := r.rate(PathLink).MiBps(), r.rate(PathWebsockify).MiBps()
		_, a99 := r.Added(PathLink)
		sum.add("link: MiB/s, added p99", fmt.Sprintf("%.0f MiB/s, %s", l, Us(a99)),
			fmt.Sprintf(">= websockify (%.0f MiB/s), < %s", ws, Us(LinkTargetAddedP99)),
			verdict(l >= ws && a99 < LinkTargetAddedP99, "see report"))
		return err
	})
	if cfg.Binary == "" {
		return // the links benchmark runs the node as a child process
	}
	step("links", func() error {
		r, err := RunLinks(ctx, LinksConfig{
			Binary: cfg.Binary, Links: 200, Window: 10 * time.Second, Settle: 2 * time.Second, DataDir: cfg.Node.DataDir, Log: cfg.Log,
		})
		if r == nil {
			return err
		}
		r.Print(w)
		last := r.Last()
		sum.add(fmt.Sprintf("links: node VmRSS, CPU at %d links (1 s ping)", last.Links),
			fmt.Sprintf("%s, %.1f%% of a core", MiB(last.Mem.RSS), 100*last.NodeCores()),
			fmt.Sprintf("<= %s, <= %.0f%% at 5,000", MiB(LinksTargetRSS), 100*LinksTargetCores),
			verdict(last.Mem.RSS <= LinksTargetRSS && last.NodeCores() <= LinksTargetCores, "see report"))
		if x := r.Restart; x != nil {
			sum.add("links: all back after SIGKILL and restart", secs(x.AllBack), "<= "+secs(LinksTargetReconnect),
				verdict(x.Links == last.Links && x.AllBack <= LinksTargetReconnect, fmt.Sprintf("%d links", x.Links)))
		}
		if a := r.Agent; a != nil {
			sum.add("links: one real lobby agent VmRSS", MiB(a.Mem.RSS), "<= "+MiB(AgentTargetRSS), verdict(a.Mem.RSS <= AgentTargetRSS, "over"))
		}
		return err
	})
}
