package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"lobby/internal/agent"
	"lobby/internal/linkproto"
	"lobby/internal/provider/memory"
)

// clusterHostPrefix names the cluster benchmark's hosts.
const clusterHostPrefix = "bench-host-"

// startClusterAgents joins one host agent per node (package agent in this
// process: the real join and link protocol; a memory provider, whose
// desktops the pool creates), agent i with node i as its first hub and
// the others next, as the README spreads hosts over a cluster. It returns
// once every host is up; stop ends them.
func startClusterAgents(ctx context.Context, c *procCluster, log io.Writer) (stop func() error, err error) {
	token, err := c.nodes[0].joinToken(ctx, len(c.nodes))
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	var mu sync.Mutex
	var runErr error
	stop = func() error {
		cancel()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		return runErr
	}
	for i := range c.nodes {
		a, err := joinClusterAgent(ctx, c, i, token)
		if err != nil {
			stop()
			return nil, err
		}
		wg.Go(func() {
			if err := a.Run(rctx); err != nil && rctx.Err() == nil {
				mu.Lock()
				runErr = errors.Join(runErr, fmt.Errorf("agent %s stopped: %w", a.Name(), err))
				mu.Unlock()
			}
		})
	}
	fmt.Fprintf(log, "cluster: %d agents joined; waiting for their hosts\n", len(c.nodes))
	deadline := time.Now().Add(time.Minute)
	for {
		up, _, err := c.nodes[0].hostsReported(ctx, clusterHostPrefix)
		if err == nil && up == len(c.nodes) {
			return stop, nil
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("%d of %d hosts up a minute after their agents joined (%v)", up, len(c.nodes), err)
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			stop()
			return nil, err
		}
	}
}

// joinClusterAgent makes agent i and redeems the join token.
func joinClusterAgent(ctx context.Context, c *procCluster, i int, token string) (*agent.Agent, error) {
	p, err := memory.New(memory.Config{Width: 16, Height: 16})
	if err != nil {
		return nil, err
	}
	var hubs []linkproto.HubSetting
	for k := range c.nodes {
		hubs = append(hubs, linkproto.HubSetting{URL: c.nodes[(i+k)%len(c.nodes)].URL, AutoConnect: true})
	}
	name := fmt.Sprintf("%s%d", clusterHostPrefix, i+1)
	// The agent's own defaults (ping, backoff), as `lobby agent` runs.
	a, err := agent.New(agent.Config{Name: name, DataDir: filepath.Join(c.dir, name), Hubs: hubs,
		Provider: p, Release: "bench", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, err
	}
	if err := a.Join(ctx, token); err != nil {
		return nil, fmt.Errorf("agent %s: %w", name, err)
	}
	return a, nil
}
