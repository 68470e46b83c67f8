package bench

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// LinksRestart is how the links came back after the node was killed.
type LinksRestart struct {
	Links int // links up again at the end
	// Listening is the time from SIGKILL to the new node answering
	// /healthz; AllBack to the last link up again (both by the node's
	// clock, which is this machine's).
	Listening, AllBack time.Duration
	// Delays are the times from SIGKILL to each link's return.
	Delays Summary
	// PerSecond counts the links that came back in each second after
	// SIGKILL; Busiest is the most in any 100 ms.
	PerSecond   []int
	Busiest     int
	Refused     int    // refusals the new node listed meanwhile (it keeps the latest 50)
	LastRefusal string // the latest refusal's reason
	Mem         Mem    // the node once every link is back and settled
	Desktops    int    // desktops recorded after the restart
}

// restartNode kills the node with SIGKILL, starts it again on the same
// data directory and port, and times the return of the fleet's links.
func restartNode(ctx context.Context, node *nodeProc, fl *fleet, cfg LinksConfig) (*LinksRestart, error) {
	n := fl.size()
	fmt.Fprintf(cfg.Log, "links: SIGKILL to the node (pid %d) with %d links, then restarting it on the same data directory\n", node.pid(), n)
	t0 := time.Now()
	if err := node.kill(); err != nil {
		return nil, err
	}
	if err := node.start(ctx); err != nil {
		return nil, fmt.Errorf("restart the node: %w", err)
	}
	r := &LinksRestart{Listening: time.Since(t0)}
	if _, err := node.links(ctx); err != nil {
		var ae *APIError
		if !errors.As(err, &ae) || ae.Status != 401 {
			return nil, err
		}
		if err := node.signIn(ctx); err != nil {
			return nil, err
		}
	}
	ls, err := waitLinks(ctx, node, fl, n, 2*time.Minute, 250*time.Millisecond)
	if err != nil {
		return nil, err
	}
	r.fromLinks(ls, fl.prefix, t0)
	fmt.Fprintf(cfg.Log, "links: all %d back %s after SIGKILL (node healthy after %s)\n", r.Links, r.AllBack.Round(time.Millisecond), r.Listening.Round(time.Millisecond))
	if err := sleep(ctx, cfg.Settle); err != nil {
		return nil, err
	}
	if r.Mem, err = ReadMem(node.pid()); err != nil {
		return nil, err
	}
	r.Desktops, err = node.countDesktops(ctx)
	return r, err
}

// fromLinks reads the return times of the links up since t0.
func (r *LinksRestart) fromLinks(ls []linkStatus, prefix string, t0 time.Time) {
	var ds []time.Duration
	for _, l := range ls {
		switch {
		case l.State == "refused":
			r.Refused++
			if r.LastRefusal == "" { // the list has the latest refusal first
				r.LastRefusal = l.LastError
			}
		case l.State == "up" && strings.HasPrefix(l.Peer, prefix) && l.Since.After(t0):
			ds = append(ds, l.Since.Sub(t0))
		}
	}
	r.Links = len(ds)
	r.Delays = Summarize(ds) // sorts ds
	if len(ds) == 0 {
		return
	}
	r.AllBack = ds[len(ds)-1]
	r.PerSecond = make([]int, int(r.AllBack/time.Second)+1)
	for _, d := range ds {
		r.PerSecond[int(d/time.Second)]++
	}
	r.Busiest = busiest(ds, 100*time.Millisecond)
}

// busiest is the largest number of sorted times within any span.
func busiest(sorted []time.Duration, span time.Duration) int {
	best, lo := 0, 0
	for hi, d := range sorted {
		for d-sorted[lo] >= span {
			lo++
		}
		best = max(best, hi-lo+1)
	}
	return best
}

// waitLinks polls the node's link list until n of the fleet's links are
// up, and returns that list.
func waitLinks(ctx context.Context, node *nodeProc, fl *fleet, n int, timeout, every time.Duration) ([]linkStatus, error) {
	deadline := time.Now().Add(timeout)
	for {
		ls, err := node.links(ctx)
		if err != nil {
			return nil, err
		}
		up, refused := 0, ""
		for _, l := range ls {
			if l.State == "up" && strings.HasPrefix(l.Peer, fl.prefix) {
				up++
			} else if l.State == "refused" && refused == "" {
				refused = l.LastError
			}
		}
		if up >= n {
			return ls, nil
		}
		if err := fl.err(); err != nil {
			return nil, err
		}
		if time.Now().After(deadline) {
			msg := fmt.Sprintf("links: %d of %d links up after %s (%d agents say they are linked)", up, n, timeout, fl.linked())
			if refused != "" {
				msg += "; latest refusal: " + refused
			}
			return nil, errors.New(msg)
		}
		if err := sleep(ctx, every); err != nil {
			return nil, err
		}
	}
}

// waitReported polls the hosts until the fleet's latest reports add up to
// want running desktops.
func waitReported(ctx context.Context, node *nodeProc, prefix string, want int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		hosts, running, err := node.hostsReported(ctx, prefix)
		if err != nil {
			return err
		}
		if running >= want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("links: %d of %d desktops reported by %d hosts after %s", running, want, hosts, timeout)
		}
		if err := sleep(ctx, time.Second); err != nil {
			return err
		}
	}
}
