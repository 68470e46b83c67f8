package auth

import (
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"time"
)

// stormGC makes room on the heap for a sign-in storm. Every hash leaves
// its memory (7–46 MiB) as garbage, and on a node whose live heap is tens
// of MiB the collector then runs every few hashes, each time scanning
// every goroutine's stack: a sixth of the CPU a storm leaves over after
// hashing. While hashes queue, it raises GOGC so that the heap may grow
// by a set room before a collection; once the queue has stayed empty for
// calmAfter, it puts GOGC back. A node whose live heap is large
// (thousands of links) already has that room and is left alone.
//
// GOGC belongs to the process, so there is one, shared by every Hasher.
type stormGC struct {
	base   int // GOGC as the process started; negative (GOGC=off): never touched
	mu     sync.Mutex
	raised bool
	since  int // hashes since the percentage was last set
	timer  *time.Timer
}

// heapRoom reads GOGC once, at start-up: nothing else in the process
// sets it.
var heapRoom = stormGC{base: gcPercent()}

const (
	calmAfter = 2 * time.Second
	// maxRoom caps the room: 32 hashes of OWASP's 7 MiB setting.
	maxRoom = 224 << 20
	// resetEvery is how many hashes go by before the percentage follows
	// the live heap again.
	resetEvery = 64
)

// stormRoom is the room a storm of hashes of hashKiB each gets: 32 of
// them, at most maxRoom.
func stormRoom(hashKiB uint32) uint64 { return min(uint64(hashKiB)<<10*32, maxRoom) }

// busy notes that a hash starts with others queued behind it.
func (g *stormGC) busy(room uint64) {
	if g.base < 0 {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.timer != nil {
		g.timer.Stop()
	}
	if g.raised && g.since < resetEvery {
		g.since++
		return
	}
	g.raised, g.since = true, 0
	debug.SetGCPercent(g.percent(liveHeap(), room))
}

// percent is the GOGC that lets a heap of live bytes grow by room, and
// never less than the process's own setting.
func (g *stormGC) percent(live, room uint64) int {
	if live == 0 {
		return g.base
	}
	return max(g.base, int(room*100/live))
}

// calm notes that the queue is empty: GOGC goes back unless hashes queue
// again within calmAfter.
func (g *stormGC) calm() {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case !g.raised:
	case g.timer == nil:
		g.timer = time.AfterFunc(calmAfter, g.restore)
	default:
		g.timer.Reset(calmAfter)
	}
}

func (g *stormGC) restore() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.raised {
		g.raised = false
		debug.SetGCPercent(g.base)
	}
}

// gcPercent is the process's GOGC now.
func gcPercent() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

// liveHeap is the heap the last collection marked live.
func liveHeap() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}
