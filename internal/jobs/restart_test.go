package jobs_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"lobby/internal/store"
)

// TestRestartWhileInserting: a node leaving maintenance mode starts its
// queue again while the pool manager inserts jobs. River sets a
// producer's fetch trigger in Start without a lock, and an insert on
// SQLite (no listener) pulls that trigger: under -race this test
// reported a data race before Queue kept the two apart.
func TestRestartWhileInserting(t *testing.T) {
	t.Parallel()
	c := newCluster(t, store.SQLite)
	c.node(1, "ins_a")
	q := c.queue(1, "ins_a", opts{later: true})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
			if _, err := q.Power(t.Context(), "dsk_gone", "start"); err != nil {
				t.Error(err)
				return
			}
		}
	})
	for range 20 {
		if err := q.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		err := q.Stop(ctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
}
