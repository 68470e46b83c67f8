package auth

import (
	"context"
	"sync"
	"testing"
	"time"
)

func TestStormGCPercent(t *testing.T) {
	t.Parallel()
	g := &stormGC{base: 100}
	tests := []struct {
		live, room uint64
		want       int
	}{
		{50 << 20, 224 << 20, 448},  // a small node: room for 32 hashes of 7 MiB
		{800 << 20, 224 << 20, 100}, // a large heap has the room already
		{0, 224 << 20, 100},         // nothing measured yet
	}
	for _, tt := range tests {
		if got := g.percent(tt.live, tt.room); got != tt.want {
			t.Errorf("percent(%d MiB live, %d MiB room) = %d, want %d", tt.live>>20, tt.room>>20, got, tt.want)
		}
	}
	if got := stormRoom(7 * 1024); got != 224<<20 {
		t.Errorf("room for 7 MiB hashes = %d MiB, want 224", got>>20)
	}
	if got := stormRoom(46 * 1024); got != maxRoom {
		t.Errorf("room for 46 MiB hashes = %d MiB, want the cap", got>>20)
	}
}

// TestStormGCRaisesAndRestores runs a queue of hashes and checks that GOGC
// goes up while they queue and back once the queue has been empty for
// calmAfter. Not parallel: GOGC belongs to the process.
func TestStormGCRaisesAndRestores(t *testing.T) {
	base := gcPercent()
	// 8 MiB hashes: room for 32 of them is far more than this test
	// binary's live heap, so GOGC must go well up.
	h := NewHasher(Params{Memory: 8 << 10, Time: 1, Threads: 1}, 1)
	ctx := context.Background()
	enc, err := h.Hash(ctx, "pw")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	raised := make(chan int, 64)
	for range 16 {
		wg.Go(func() {
			if _, err := h.Verify(ctx, "pw", enc); err != nil {
				t.Error(err)
			}
			heapRoom.mu.Lock()
			if heapRoom.raised {
				raised <- gcPercent()
			}
			heapRoom.mu.Unlock()
		})
	}
	wg.Wait()
	close(raised)
	n := 0
	for p := range raised {
		n++
		if p <= base {
			t.Fatalf("GOGC %d while hashes queued; want more than the process's %d", p, base)
		}
	}
	if n == 0 {
		t.Fatal("16 hashes through 1 slot never marked a storm")
	}
	deadline := time.Now().Add(calmAfter + 10*time.Second)
	for {
		heapRoom.mu.Lock()
		raised := heapRoom.raised
		heapRoom.mu.Unlock()
		if !raised && gcPercent() == base {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GOGC %d (raised %t) long after the queue emptied; want %d", gcPercent(), raised, base)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
