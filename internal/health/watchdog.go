package health

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
)

// Watchdog defaults.
const (
	DefaultStoreLimit = 5 * time.Second
	DefaultLoopLimit  = 10 * time.Second
	watchdogTick      = 500 * time.Millisecond
)

// Loop names the watchdog watches on every node.
const (
	LoopTicker    = "watchdog ticker"   // the watchdog's own ticker: the Go scheduler runs
	LoopMonitor   = "health monitor"    // Monitor's once-a-second round
	LoopHeartbeat = "cluster heartbeat" // the node's heartbeat in the store moves
)

// WatchdogConfig configures a Watchdog. Zero durations take the defaults.
type WatchdogConfig struct {
	// StoreLimit is how long the store may go without answering before
	// the node says it is not ready (5 s: well within the 10 s after
	// which the other nodes count it dead).
	StoreLimit time.Duration
	// LoopLimit is how long a watched loop may go without running (10 s).
	LoopLimit time.Duration
	Logger    *slog.Logger
	// Now is the watchdog's clock (time.Now): it measures durations in
	// this process only, never compared with another machine's.
	Now func() time.Time
}

// Watchdog is a node's judgement of its own health: the store answers and
// its loops run. Check says why not; /readyz answers it.
type Watchdog struct {
	cfg WatchdogConfig

	mu       sync.Mutex
	storeOK  time.Time // last successful round trip
	storeErr error     // the failure since, if any
	loops    map[string]time.Time
	maxLag   time.Duration // worst lateness of the ticker since TakeLag
	unready  string        // the last verdict logged
}

// NewWatchdog returns a watchdog that counts the store and its loops as
// healthy from now.
func NewWatchdog(cfg WatchdogConfig) *Watchdog {
	if cfg.StoreLimit <= 0 {
		cfg.StoreLimit = DefaultStoreLimit
	}
	if cfg.LoopLimit <= 0 {
		cfg.LoopLimit = DefaultLoopLimit
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	now := cfg.Now()
	return &Watchdog{cfg: cfg, storeOK: now, loops: map[string]time.Time{LoopTicker: now}}
}

// Config is the watchdog's configuration with defaults filled.
func (w *Watchdog) Config() WatchdogConfig { return w.cfg }

// StoreOK records a successful round trip to the store.
func (w *Watchdog) StoreOK() {
	w.mu.Lock()
	w.storeOK, w.storeErr = w.cfg.Now(), nil
	w.mu.Unlock()
}

// StoreFailed records a failed round trip to the store.
func (w *Watchdog) StoreFailed(err error) {
	w.mu.Lock()
	w.storeErr = err
	w.mu.Unlock()
}

// Beat records that the named loop ran; a loop is watched from its first
// beat on.
func (w *Watchdog) Beat(loop string) {
	w.mu.Lock()
	w.loops[loop] = w.cfg.Now()
	w.mu.Unlock()
}

// Check returns why the node should not get traffic now, or nil.
func (w *Watchdog) Check() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	var why []string
	now := w.cfg.Now()
	if since := now.Sub(w.storeOK); since > w.cfg.StoreLimit {
		msg := fmt.Sprintf("the database has not answered for %s (limit %s)", roundUp(since), w.cfg.StoreLimit)
		if w.storeErr != nil {
			msg += ": " + w.storeErr.Error()
		}
		why = append(why, msg)
	}
	names := make([]string, 0, len(w.loops))
	for name := range w.loops {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if since := now.Sub(w.loops[name]); since > w.cfg.LoopLimit {
			why = append(why, fmt.Sprintf("the %s has not run for %s (limit %s): it is stuck", name, roundUp(since), w.cfg.LoopLimit))
		}
	}
	if len(why) == 0 {
		return nil
	}
	return fmt.Errorf("%s", strings.Join(why, "; "))
}

// TakeLag returns how late the watchdog's ticker ran at worst since the
// last call, and starts measuring again.
func (w *Watchdog) TakeLag() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	lag := w.maxLag
	w.maxLag = 0
	return lag
}

// Run ticks until ctx ends: each tick beats LoopTicker, measures how late
// it came (a starved or stalled process), and logs each change of
// verdict.
func (w *Watchdog) Run(ctx context.Context) {
	t := time.NewTicker(watchdogTick)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			// Measured on receipt: a tick's own time says when it fired,
			// not when this goroutine got to run.
			now := time.Now()
			lag := max(0, now.Sub(last)-watchdogTick)
			last = now
			w.mu.Lock()
			w.maxLag = max(w.maxLag, lag)
			w.mu.Unlock()
			w.Beat(LoopTicker)
			w.logChange()
		}
	}
}

// logChange logs when the verdict changes.
func (w *Watchdog) logChange() {
	why := ""
	if err := w.Check(); err != nil {
		why = err.Error()
	}
	w.mu.Lock()
	was := w.unready
	w.unready = why
	w.mu.Unlock()
	switch {
	case why != "" && was == "":
		w.cfg.Logger.Error("watchdog: this node is not healthy: /readyz answers 503 until it recovers", "reason", why)
	case why == "" && was != "":
		w.cfg.Logger.Info("watchdog: this node recovered: /readyz answers 200 again")
	}
}

// roundUp shortens a duration past a limit for messages, never down to
// the limit itself.
func roundUp(d time.Duration) time.Duration {
	unit := 100 * time.Millisecond
	if d >= time.Minute {
		unit = time.Second
	}
	return (d + unit - 1).Truncate(unit)
}

// round shortens a duration for messages.
func round(d time.Duration) time.Duration {
	if d >= 10*time.Second {
		return d.Round(time.Second)
	}
	return d.Round(100 * time.Millisecond)
}
