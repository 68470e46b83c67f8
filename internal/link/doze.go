package link

import (
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The node reads its quiet links in bursts. A quiet link carries nothing
// but its agent's heartbeat, a few bytes every ping interval; a reader
// parked on the link's socket is woken by each heartbeat on its own, and
// with thousands of links whose heartbeats are spread over the interval
// the node process goes from idle to busy and back for every one of them.
// Each such wakeup is a trip through the Go scheduler and the kernel (a
// thread woken from epoll_wait or a futex, sysmon woken, the thread put
// back to sleep) that costs far more than reading the heartbeat: at 5,000
// links and a 1 s interval, about 50 µs each, a quarter of a core.
//
// So between heartbeats the node's reader of a quiet link does not wait
// on its socket: after reading what arrived it sleeps until the next
// heartbeat is due (the interval after the last frame), rounded up to the
// next tick of the hub's sweeper (every sweepEvery), which wakes every
// reader whose heartbeat fell due in one go, and then it reads. The
// process wakes a few times a second for all its links instead of once
// per heartbeat.
//
// Sleeping readers are not enough: Go's netpoller watches every socket
// all the time, and a heartbeat arriving on the socket of a sleeping
// reader still wakes the thread waiting in epoll_wait, to find nobody to
// run. So while its reader sleeps, a link's socket has SO_RCVLOWAT raised
// (dozeLowat bytes): the kernel does not report it readable for a few
// heartbeats. Before any read that could wait on the socket, the reader
// puts SO_RCVLOWAT back to 1 byte, so such a read is woken by any byte,
// as usual. The one read that cannot wait is the first after a doze when
// the reader reads the socket itself (no outer TLS between them): it is
// made without waiting (a read(2) that may answer EAGAIN), so a quiet
// link goes from doze to doze with one read(2) per heartbeat.
//
// Nothing the node waits for is delayed: any frame the node writes (a
// command, a console, the round-trip ping, a close) wakes the reader at
// once, and a link with any stream open besides its report stream does
// not doze. What waits is what the agent sends on its own while quiet:
// its heartbeats and reports (and a renewal's request) are read up to one
// interval and two sweeps late. Liveness is unchanged: a heartbeat is
// read at least every interval plus two sweeps, within the three
// intervals the sweeper allows (links doze from minDoze up); a dead or
// hung agent is found as before, and a closed connection at the next due
// time.

// Links doze at ping intervals from minDoze to maxDoze. Under minDoze,
// a heartbeat read up to two sweeps late would come near the three
// intervals of silence that end a link; over maxDoze, what an agent sends
// on its own would wait too long.
const (
	minDoze = 2 * sweepEvery
	maxDoze = 5 * time.Second
)

// dozeLowat is SO_RCVLOWAT while a reader sleeps: far above a few
// heartbeats, and low enough (a quarter of the default receive buffer)
// that the kernel neither grows the buffer nor clamps the window for it.
const dozeLowat = 16 << 10

// ticks wakes dozing readers: a channel per tick of the hub's sweeper
// (a step of sweepEvery) that readers wait for, closed by the sweeper. The
// zero value is ready.
type ticks struct {
	mu sync.Mutex
	at map[int64]chan struct{} // by tick number (sweepTick)
}

// after returns a channel closed at the first tick after t.
func (g *ticks) after(t time.Time) <-chan struct{} {
	n := sweepTick(t) + 1
	g.mu.Lock()
	defer g.mu.Unlock()
	ch := g.at[n]
	if ch == nil {
		if g.at == nil {
			g.at = map[int64]chan struct{}{}
		}
		ch = make(chan struct{})
		g.at[n] = ch
	}
	return ch
}

// fire closes the channels of every tick up to now (all of them when the
// hub closes).
func (g *ticks) fire(now time.Time, all bool) {
	n := sweepTick(now)
	g.mu.Lock()
	defer g.mu.Unlock()
	for k, ch := range g.at {
		if k <= n || all {
			close(ch)
			delete(g.at, k)
		}
	}
}

// doze is a reader's permission to sleep between heartbeats.
type doze struct {
	interval time.Duration
	quiet    func() bool     // whether the link has nothing open but its reports
	ticks    *ticks          // the hub's
	sock     syscall.RawConn // the TCP socket under it all, for SO_RCVLOWAT; nil if none
}

// dozeState is the reader's side of dozing; the writer's is in WS.
type dozeState struct {
	cfg     atomic.Pointer[doze]
	writes  atomic.Uint64 // frames written: the reader wakes for their answers
	dozing  atomic.Bool
	closing atomic.Bool
	pinged  atomic.Bool   // a ping is unanswered: its pong is timed
	wake    chan struct{} // cap 1: a write wakes a dozing reader

	// The reader's own.
	seen uint64 // writes when the reader last looked
	high bool   // SO_RCVLOWAT is raised
	try  bool   // the next read of the socket is made without waiting
}

// doze lets the reader sleep between heartbeats while quiet reports true
// (see above), waking at the ticks of g. The hub calls it on its side of
// a leaf's link.
func (ws *WS) doze(interval time.Duration, quiet func() bool, g *ticks) {
	ws.dz.cfg.Store(&doze{interval: interval, quiet: quiet, ticks: g, sock: socketOf(ws.conn)})
}

// setLowat sets the socket's SO_RCVLOWAT (see above).
func (d *doze) setLowat(n int) {
	_ = d.sock.Control(func(fd uintptr) {
		_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVLOWAT, n)
	})
}

// socketReader is what a WebSocket's buffer reads from: the connection,
// or, for the first read after a doze, its socket without waiting.
type socketReader struct {
	ws     *WS
	r      io.Reader
	direct syscall.RawConn // the socket r reads, when nothing is in between
}

func (s *socketReader) Read(p []byte) (int, error) {
	dz := &s.ws.dz
	if dz.try {
		dz.try = false
		if s.direct != nil {
			if n, err, done := tryRead(s.direct, p); done {
				return n, err
			}
		}
	}
	if dz.high {
		// This read may wait: any byte must wake it.
		dz.high = false
		if d := dz.cfg.Load(); d != nil {
			d.setLowat(1)
		}
	}
	return s.r.Read(p)
}

// tryRead reads what the socket holds without waiting; done is false
// when it held nothing.
func tryRead(sock syscall.RawConn, p []byte) (n int, err error, done bool) {
	var rerr error
	cerr := sock.Read(func(fd uintptr) bool {
		n, rerr = syscall.Read(int(fd), p)
		return true // never wait here
	})
	switch {
	case cerr != nil:
		return 0, cerr, true
	case errors.Is(rerr, syscall.EAGAIN) || errors.Is(rerr, syscall.EINTR):
		return 0, nil, false
	case rerr != nil:
		return 0, rerr, true
	case n == 0:
		return 0, io.EOF, true
	}
	return n, nil, true
}

// wrote records a frame written, waking the reader if it dozes.
func (ws *WS) wrote() {
	ws.dz.writes.Add(1)
	if ws.dz.dozing.Load() {
		ws.poke()
	}
}

func (ws *WS) poke() {
	select {
	case ws.dz.wake <- struct{}{}:
	default:
	}
}

// sleep is called by the reader between frames, with nothing buffered:
// it returns at once, or when the link's next heartbeat is due or a
// frame was written.
func (ws *WS) sleep() {
	d := ws.dz.cfg.Load()
	if d == nil {
		return
	}
	dz := &ws.dz
	select {
	case <-dz.wake: // a stale wake from a write seen below
	default:
	}
	if w := dz.writes.Load(); w != dz.seen {
		// A frame was written since the reader last looked: its answer
		// may be on the way, so wait on the socket for the next frame.
		dz.seen = w
		return
	}
	if dz.closing.Load() || dz.pinged.Load() || !d.quiet() {
		return
	}
	due := ws.LastRead().Add(d.interval)
	if !time.Now().Before(due) {
		return // late: wait on the socket for it
	}
	// Publish the doze, then look at the writes again: a writer either
	// sees dozing and wakes the reader, or wrote before this look.
	dz.dozing.Store(true)
	defer dz.dozing.Store(false)
	if dz.writes.Load() != dz.seen || dz.closing.Load() || dz.pinged.Load() {
		return
	}
	if !dz.high && d.sock != nil {
		d.setLowat(dozeLowat)
		dz.high = true
	}
	select {
	case <-d.ticks.after(due):
		dz.try = true
	case <-dz.wake:
		// Awake for the answer to this write: the next frame read.
		dz.seen = dz.writes.Load()
	}
}
