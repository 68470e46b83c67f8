package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"

	"lobby/internal/agent"
	"lobby/internal/linkproto"
	"lobby/internal/provider"
	"lobby/internal/provider/memory"
)

// fleet is the links benchmark's load generator: host agents in this
// process (package agent: the real join, the real link protocol, the
// real reports), each with a memory provider holding its desktops and a
// data directory of its own. It is a benchmark tool: a real host runs one
// agent per process.
type fleet struct {
	dir      string // agents' data directories are made under it
	hub      linkproto.HubSetting
	desktops int
	prefix   string // agents are named prefix00001, ...

	runCtx  context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	agents  []*agent.Agent
	failed  atomic.Int64 // agents whose Run returned an error
	retries atomic.Int64 // joins tried again after a transient error
	mu      sync.Mutex
	runErr  error // the first such error
}

func newFleet(dir, hubURL string, ping time.Duration, desktops int) *fleet {
	ctx, cancel := context.WithCancel(context.Background())
	return &fleet{
		dir: dir, desktops: desktops, prefix: "bench-",
		hub:    linkproto.HubSetting{URL: hubURL, Ping: linkproto.Duration(ping), AutoConnect: true},
		runCtx: ctx, cancel: cancel,
	}
}

// size is the number of agents started.
func (f *fleet) size() int { return len(f.agents) }

// grow joins agents with token (which allows n-size() uses), `parallel`
// at a time, and starts each one's Run once it has joined. It returns
// when every new agent has joined (the links come up in the background).
func (f *fleet) grow(ctx context.Context, token string, n, parallel int) error {
	first := len(f.agents)
	if n <= first {
		return nil
	}
	added := make([]*agent.Agent, n-first)
	sem := make(chan struct{}, max(1, parallel))
	errs := make(chan error, len(added))
	var wg sync.WaitGroup
	for i := range added {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			a, err := f.join(ctx, first+i+1, token)
			if err != nil {
				errs <- err
				return
			}
			added[i] = a
			f.wg.Add(1)
			go f.run(a)
		}()
	}
	wg.Wait()
	close(errs)
	for _, a := range added {
		if a != nil {
			f.agents = append(f.agents, a)
		}
	}
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	if len(all) > 0 {
		return fmt.Errorf("%d of %d agents could not join; the first: %w", len(all), len(added), all[0])
	}
	return ctx.Err()
}

// join makes agent number i with its desktops and redeems the token.
func (f *fleet) join(ctx context.Context, i int, token string) (*agent.Agent, error) {
	p, err := memory.New(memory.Config{Width: 64, Height: 48})
	if err != nil {
		return nil, err
	}
	for d := 1; d <= f.desktops; d++ {
		name := fmt.Sprintf("desk-%03d", d)
		if _, err := p.Create(ctx, provider.Spec{Name: name}); err != nil {
			return nil, err
		}
		if _, err := p.Start(ctx, name); err != nil {
			return nil, err
		}
	}
	name := fmt.Sprintf("%s%05d", f.prefix, i)
	a, err := agent.New(agent.Config{
		Name: name, DataDir: filepath.Join(f.dir, name), Hubs: []linkproto.HubSetting{f.hub},
		Provider: p, Release: "bench", Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return nil, err
	}
	// A join that timed out on a saturated machine is tried again; a
	// refusal is final.
	for try := 1; ; try++ {
		err = a.Join(ctx, token)
		var refused *agent.RefusedError
		if err == nil || try == joinTries || errors.As(err, &refused) || ctx.Err() != nil {
			break
		}
		f.retries.Add(1)
		if err := sleep(ctx, time.Duration(try)*time.Second); err != nil {
			return nil, err
		}
	}
	if err != nil {
		return nil, fmt.Errorf("agent %s: %w", name, err)
	}
	return a, nil
}

// joinTries bounds the attempts to join one agent.
const joinTries = 3

func (f *fleet) run(a *agent.Agent) {
	defer f.wg.Done()
	var err error
	pprof.Do(f.runCtx, pprof.Labels("side", "agent"), func(ctx context.Context) { err = a.Run(ctx) })
	if err != nil {
		f.failed.Add(1)
		f.mu.Lock()
		if f.runErr == nil {
			f.runErr = fmt.Errorf("agent %s stopped: %w", a.Name(), err)
		}
		f.mu.Unlock()
	}
}

// err is the first error an agent's Run returned.
func (f *fleet) err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.runErr
}

// linked counts the agents that say they are linked.
func (f *fleet) linked() int {
	n := 0
	for _, a := range f.agents {
		if a.Status().Hub != "" {
			n++
		}
	}
	return n
}

// close stops every agent (their links end) and removes their data.
func (f *fleet) close() error {
	f.cancel()
	done := make(chan struct{})
	go func() { f.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-time.After(time.Minute):
		err = errors.New("fleet: agents did not stop within a minute")
	}
	return errors.Join(err, os.RemoveAll(f.dir))
}
