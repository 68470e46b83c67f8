package health

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// clock is a settable clock for the watchdog's rules.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func TestWatchdogStore(t *testing.T) {
	c := &clock{t: t0}
	wd := NewWatchdog(WatchdogConfig{Now: c.now, Logger: slog.New(slog.DiscardHandler)})
	if err := wd.Check(); err != nil {
		t.Fatalf("a new watchdog says %v", err)
	}
	// Failures within the limit keep the node ready: a blip is not an
	// outage.
	c.advance(3 * time.Second)
	wd.StoreFailed(errors.New("read the database's clock: context deadline exceeded"))
	if err := wd.Check(); err != nil {
		t.Fatalf("3 s into a store outage (limit 5 s): %v", err)
	}
	c.advance(3 * time.Second)
	err := wd.Check()
	if err == nil || !strings.Contains(err.Error(), "the database has not answered for 6s (limit 5s): read the database's clock: context deadline exceeded") {
		t.Fatalf("6 s into a store outage: %v, want the database named with its error", err)
	}
	// It recovers by itself.
	wd.StoreOK()
	if err := wd.Check(); err != nil {
		t.Fatalf("after the store answered again: %v", err)
	}
}

func TestWatchdogLoops(t *testing.T) {
	c := &clock{t: t0}
	wd := NewWatchdog(WatchdogConfig{Now: c.now, LoopLimit: 10 * time.Second, StoreLimit: time.Hour})
	wd.Beat(LoopMonitor)
	c.advance(11 * time.Second)
	wd.Beat(LoopTicker)
	err := wd.Check()
	if err == nil || !strings.Contains(err.Error(), "the health monitor has not run for 11s (limit 10s): it is stuck") || strings.Contains(err.Error(), "ticker") {
		t.Fatalf("a loop silent for 11 s: %v, want it named (and only it)", err)
	}
	wd.Beat(LoopMonitor)
	if err := wd.Check(); err != nil {
		t.Fatalf("after the loop ran again: %v", err)
	}
}

// TestWatchdogStuckLoop blocks a real loop and lets it go: the watchdog
// says so while it is blocked, and forgets it once it runs again.
func TestWatchdogStuckLoop(t *testing.T) {
	t.Parallel()
	wd := NewWatchdog(WatchdogConfig{LoopLimit: 2 * time.Second, StoreLimit: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go wd.Run(ctx) // its own ticker beats too
	block, unblock := make(chan struct{}), make(chan struct{})
	var beats atomic.Int64
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-block:
				<-unblock // a hung call
			case <-tick.C:
				wd.Beat("worker loop")
				beats.Add(1)
			}
		}
	}()
	waitFor(t, "the running loop is healthy", func() bool { return beats.Load() > 0 && wd.Check() == nil })
	block <- struct{}{}
	waitFor(t, "the blocked loop is named", func() bool {
		err := wd.Check()
		return err != nil && strings.Contains(err.Error(), "the worker loop has not run for") && strings.Contains(err.Error(), "it is stuck")
	})
	close(unblock)
	waitFor(t, "the loop recovered", func() bool { return wd.Check() == nil })
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
