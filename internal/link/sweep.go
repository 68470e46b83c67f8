package link

import "time"

// sweepEvery is how often the hub's sweeper runs: it wakes the dozing
// readers whose heartbeats are due (doze.go) and checks the links whose
// liveness or round trip is due.
const sweepEvery = 250 * time.Millisecond

// startSweep starts the hub's one liveness sweeper (see Heartbeat), one
// goroutine for every link instead of a timer each, and the writer of
// the links' reports.
func (h *Hub) startSweep() {
	h.sweepOnce.Do(func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if !h.closed {
			stop, done := make(chan struct{}), make(chan struct{})
			h.sweepStop, h.flushDone = stop, done
			go h.sweep(stop)
			go func() { defer close(done); h.flushReports(stop) }()
		}
	})
}

// sweepTick numbers the sweeper's ticks.
func sweepTick(t time.Time) int64 { return t.UnixNano() / int64(sweepEvery) }

// sweep checks each link when it is due rather than at every tick: when
// it could first be silent for too long (three intervals after its last
// frame) or its round-trip ping is due, whichever comes first. A link
// whose agent keeps sending is looked at about once every two intervals,
// and a silent one is cut within a tick of its limit.
func (h *Hub) sweep(stop <-chan struct{}) {
	t := time.NewTicker(sweepEvery)
	defer t.Stop()
	due := map[int64][]*leaf{} // by tick
	last := sweepTick(time.Now())
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			h.ticks.fire(now, false)
			h.mu.Lock()
			fresh := h.fresh
			h.fresh = nil
			h.mu.Unlock()
			n := sweepTick(now)
			h.checkLinks(now, n, fresh, due)
			for k := last + 1; k <= n; k++ {
				ls := due[k]
				delete(due, k)
				h.checkLinks(now, n, ls, due)
			}
			last = max(last, n)
		}
	}
}

// checkLinks checks links at tick n, cutting the silent ones and putting
// the others back in due at their next check.
func (h *Hub) checkLinks(now time.Time, n int64, ls []*leaf, due map[int64][]*leaf) {
	for _, l := range ls {
		if l.gone.Load() {
			continue
		}
		if err := l.watch.check(now); err != nil {
			l.setError(err.Error())
			h.unlink(l)
			go l.sess.Close()
			continue
		}
		k := max(sweepTick(l.watch.checkAt())+1, n+1)
		due[k] = append(due[k], l)
	}
}
