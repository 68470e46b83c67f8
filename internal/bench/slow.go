package bench

import (
	"fmt"
	"os"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"
)

// slowWatch writes every goroutine's stack to a file, once, when a tracked
// request has been running longer than limit: a way to see what a
// stalled request waits for. A nil *slowWatch tracks nothing.
type slowWatch struct {
	path  string
	limit time.Duration
	slots []atomic.Int64 // start of each client's tracked request, Unix ns; 0 when idle
	stop  chan struct{}
	wg    sync.WaitGroup
	note  string // what was dumped, for the report
}

// newSlowWatch watches n clients; it returns nil when path is empty.
func newSlowWatch(path string, limit time.Duration, n int) *slowWatch {
	if path == "" {
		return nil
	}
	w := &slowWatch{path: path, limit: limit, slots: make([]atomic.Int64, n), stop: make(chan struct{})}
	w.wg.Go(w.run)
	return w
}

func (w *slowWatch) begin(i int) {
	if w != nil {
		w.slots[i].Store(time.Now().UnixNano())
	}
}

func (w *slowWatch) end(i int) {
	if w != nil {
		w.slots[i].Store(0)
	}
}

func (w *slowWatch) run() {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case now := <-t.C:
			for i := range w.slots {
				s := w.slots[i].Load()
				if s == 0 || now.Sub(time.Unix(0, s)) < w.limit {
					continue
				}
				w.note = w.dump(now.Sub(time.Unix(0, s)))
				return
			}
		}
	}
}

func (w *slowWatch) dump(age time.Duration) string {
	f, err := os.Create(w.path)
	if err != nil {
		return fmt.Sprintf("a request ran %s; writing %s failed: %v", age.Round(time.Millisecond), w.path, err)
	}
	defer f.Close()
	fmt.Fprintf(f, "a request has been running for %s; every goroutine:\n\n", age)
	_ = pprof.Lookup("goroutine").WriteTo(f, 2)
	return fmt.Sprintf("a request ran over %s; goroutines written to %s", w.limit, w.path)
}

// close stops watching and says what was dumped, if anything.
func (w *slowWatch) close() string {
	if w == nil {
		return ""
	}
	close(w.stop)
	w.wg.Wait()
	return w.note
}
