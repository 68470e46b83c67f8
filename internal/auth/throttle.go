package auth

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"lobby/internal/lobby"
)

// Throttle limits failed sign-ins per username and per client address:
// after Burst failures within Window, further attempts are refused until
// the oldest failure leaves the window. Successful sign-ins are not
// counted, so a start-of-day storm from one proxy address is not slowed;
// a password-guessing run is. It is per node: a cluster multiplies the
// budget by the node count, which still stops a guessing run cold.
type Throttle struct {
	UserBurst int           // failures per username within Window; default 5
	AddrBurst int           // failures per address within Window; default 20
	Window    time.Duration // default 15 minutes
	Now       func() time.Time

	mu    sync.Mutex
	fails map[string][]time.Time // "u:name" or "a:addr" → failure times, oldest first
}

// NewThrottle returns a throttle with the default limits.
func NewThrottle() *Throttle {
	return &Throttle{UserBurst: 5, AddrBurst: 20, Window: 15 * time.Minute, Now: time.Now}
}

func throttleKeys(username, addr string) (user, address string) {
	return "u:" + strings.ToLower(username), "a:" + addr
}

// Check refuses an attempt for username from addr while either has used up
// its failures; the error is KindRateLimited and says when to retry.
func (t *Throttle) Check(username, addr string) error {
	if t == nil {
		return nil
	}
	uk, ak := throttleKeys(username, addr)
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.Now()
	for _, k := range []struct {
		key   string
		burst int
		what  string
	}{{uk, t.UserBurst, "for this account"}, {ak, t.AddrBurst, "from your address"}} {
		times := t.prune(k.key, now)
		if len(times) >= k.burst {
			wait := times[0].Add(t.Window).Sub(now).Round(time.Second)
			return &lobby.Error{Kind: lobby.KindRateLimited, Message: fmt.Sprintf("too many failed sign-ins %s: wait %s and try again, or ask an administrator to reset your password", k.what, humanWait(wait))}
		}
	}
	return nil
}

// Fail records a failed attempt.
func (t *Throttle) Fail(username, addr string) {
	if t == nil {
		return
	}
	uk, ak := throttleKeys(username, addr)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.fails == nil {
		t.fails = map[string][]time.Time{}
	}
	now := t.Now()
	for _, k := range []string{uk, ak} {
		t.fails[k] = append(t.prune(k, now), now)
	}
	// Keep memory bounded under a spray of usernames: forget idle keys.
	if len(t.fails) > 100000 {
		for k := range t.fails {
			if len(t.prune(k, now)) == 0 {
				delete(t.fails, k)
			}
		}
	}
}

// Succeed clears the username's failures (not the address's: one good
// password must not reset a guessing run over many accounts).
func (t *Throttle) Succeed(username string) {
	if t == nil {
		return
	}
	uk, _ := throttleKeys(username, "")
	t.mu.Lock()
	delete(t.fails, uk)
	t.mu.Unlock()
}

// prune drops failures older than the window; t.mu is held.
func (t *Throttle) prune(key string, now time.Time) []time.Time {
	times := t.fails[key]
	i := 0
	for i < len(times) && !times[i].After(now.Add(-t.Window)) {
		i++
	}
	if i == len(times) {
		delete(t.fails, key)
		return nil
	}
	times = times[i:]
	t.fails[key] = times
	return times
}

func humanWait(d time.Duration) string {
	if d < time.Second {
		d = time.Second
	}
	if d < time.Minute {
		return fmt.Sprintf("%d seconds", int(d.Seconds()))
	}
	return fmt.Sprintf("%d minutes", int((d+time.Minute-1)/time.Minute))
}
