package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"

	"golang.org/x/crypto/argon2"
)

// Params are argon2id cost parameters.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32
	Threads uint8
}

// OWASPParams are the argon2id settings OWASP's password storage
// guidance lists as giving an equal level of defense, trading memory for
// passes: 46 MiB once down to 7 MiB five times.
var OWASPParams = []Params{
	{Memory: 46 * 1024, Time: 1, Threads: 1},
	{Memory: 19 * 1024, Time: 2, Threads: 1},
	{Memory: 12 * 1024, Time: 3, Threads: 1},
	{Memory: 9 * 1024, Time: 4, Threads: 1},
	{Memory: 7 * 1024, Time: 5, Threads: 1},
}

// DefaultParams is the last of OWASPParams (7 MiB, 5 passes). All five
// defend equally; this one hashes fastest here, because two hashes at
// once fit in the processor's cache (2 × 7 MiB; 2 × 19 MiB does not fit
// a 32 MiB L3, and each core then waits on memory), and each sign-in
// leaves 7 MiB of garbage instead of 19. See BENCHMARKS.md, sign-in storm.
var DefaultParams = OWASPParams[len(OWASPParams)-1]

// String formats the parameters as in an encoded hash.
func (p Params) String() string {
	return fmt.Sprintf("m=%d,t=%d,p=%d", p.Memory, p.Time, p.Threads)
}

// Set parses parameters written as in an encoded hash ("m=7168,t=5,p=1")
// and refuses any weaker than OWASP's guidance, so that it serves as a
// flag.
func (p *Params) Set(s string) error {
	var q Params
	var rest string
	if n, _ := fmt.Sscanf(s+"$", "m=%d,t=%d,p=%d%s", &q.Memory, &q.Time, &q.Threads, &rest); n != 4 || rest != "$" {
		return fmt.Errorf("%q is not argon2id parameters: write them as m=KiB,t=passes,p=lanes, such as %s", s, DefaultParams)
	}
	if err := q.Check(); err != nil {
		return err
	}
	*p = q
	return nil
}

// Check refuses parameters weaker than OWASP's guidance: at least 7 MiB,
// and at least as much memory times passes as its weakest setting.
func (p Params) Check() error {
	weakest := OWASPParams[len(OWASPParams)-1]
	switch {
	case p.Threads == 0 || p.Time == 0:
		return fmt.Errorf("argon2id parameters %s: passes (t) and lanes (p) must be at least 1", p)
	case p.Memory > 4<<20:
		return fmt.Errorf("argon2id parameters %s: more than 4 GiB of memory (m) per hash would stop the node", p)
	case p.Memory < weakest.Memory || uint64(p.Memory)*uint64(p.Time) < uint64(weakest.Memory)*uint64(weakest.Time):
		return fmt.Errorf("argon2id parameters %s are weaker than OWASP's guidance: use one of %s", p, owaspList())
	}
	return nil
}

func owaspList() string {
	s := make([]string, len(OWASPParams))
	for i, p := range OWASPParams {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}

// Hasher hashes and verifies passwords. Hashing is the costliest thing a
// node does (~20 ms of one core each), so a Hasher runs at most Slots of
// them at once and serves waiters strictly first come, first served: in a
// sign-in storm nobody starves.
type Hasher struct {
	Params Params
	queue  *fifo
}

// NewHasher returns a Hasher running at most slots hashes at once (0 means
// one per CPU).
func NewHasher(p Params, slots int) *Hasher {
	if slots <= 0 {
		slots = runtime.GOMAXPROCS(0)
	}
	return &Hasher{Params: p, queue: newFIFO(slots)}
}

// Hash returns the PHC-encoded argon2id hash of password with a new salt.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key, err := h.derive(ctx, password, salt, h.Params)
	if err != nil {
		return "", err
	}
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$%s$%s$%s", argon2.Version, h.Params, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// errBadHash means a stored hash cannot be parsed.
var errBadHash = errors.New("stored password hash is not a valid argon2id hash")

// Verify reports whether password matches the encoded hash. The
// parameters come from the hash, so hashes made with older parameters
// still verify.
func (h *Hasher) Verify(ctx context.Context, password, encoded string) (bool, error) {
	p, salt, want, err := decodeHash(encoded)
	if err != nil {
		return false, err
	}
	got, err := h.derive(ctx, password, salt, p)
	if err != nil {
		return false, err
	}
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

func (h *Hasher) derive(ctx context.Context, password string, salt []byte, p Params) ([]byte, error) {
	if err := h.queue.acquire(ctx); err != nil {
		return nil, err
	}
	defer func() {
		if h.queue.release() == 0 {
			heapRoom.calm()
		}
	}()
	if h.queue.queued() > 0 {
		heapRoom.busy(stormRoom(p.Memory))
	}
	return argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, 32), nil
}

func decodeHash(s string) (p Params, salt, key []byte, err error) {
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return p, nil, nil, errBadHash
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return p, nil, nil, errBadHash
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil {
		return p, nil, nil, errBadHash
	}
	if p.Memory == 0 || p.Time == 0 || p.Threads == 0 || p.Memory > 4<<20 {
		return p, nil, nil, errBadHash
	}
	b64 := base64.RawStdEncoding
	if salt, err = b64.DecodeString(parts[4]); err != nil {
		return p, nil, nil, errBadHash
	}
	if key, err = b64.DecodeString(parts[5]); err != nil || len(key) < 16 {
		return p, nil, nil, errBadHash
	}
	return p, salt, key, nil
}

// fifo is a counting semaphore that wakes waiters in arrival order.
type fifo struct {
	mu      sync.Mutex
	free    int
	waiters []chan struct{}
}

func newFIFO(n int) *fifo { return &fifo{free: n} }

func (f *fifo) acquire(ctx context.Context) error {
	f.mu.Lock()
	if f.free > 0 && len(f.waiters) == 0 {
		f.free--
		f.mu.Unlock()
		return nil
	}
	ch := make(chan struct{})
	f.waiters = append(f.waiters, ch)
	f.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		f.mu.Lock()
		defer f.mu.Unlock()
		for i, w := range f.waiters {
			if w == ch {
				f.waiters = append(f.waiters[:i], f.waiters[i+1:]...)
				return ctx.Err()
			}
		}
		// Handed a slot just as we gave up: pass it on.
		f.releaseLocked()
		return ctx.Err()
	}
}

// release frees a slot and returns how many wait.
func (f *fifo) release() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.releaseLocked()
	return len(f.waiters)
}

// queued is how many wait for a slot.
func (f *fifo) queued() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.waiters)
}

func (f *fifo) releaseLocked() {
	if len(f.waiters) > 0 {
		ch := f.waiters[0]
		f.waiters = f.waiters[1:]
		close(ch)
		return
	}
	f.free++
}
