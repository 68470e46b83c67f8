package local

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"lobby/internal/lobby"
	"lobby/internal/provider"
)

// killWait bounds the wait for processes to vanish after SIGKILL.
const killWait = 5 * time.Second

// Stop stops a desktop: SIGTERM to all its processes, SIGKILL to those
// left after Config.StopGrace, and waits until none is left. Stopping a
// stopped desktop succeeds.
func (p *Provider) Stop(ctx context.Context, name string) error {
	d, err := p.lockOp(name)
	if err != nil {
		return err
	}
	defer d.op.Unlock()
	return p.stopLocked(ctx, d)
}

// stopLocked stops d; the caller holds d.op.
func (p *Provider) stopLocked(ctx context.Context, d *desktop) error {
	p.mu.Lock()
	d.st.Desired = lobby.PowerStopped
	err := d.save()
	p.mu.Unlock()
	if err != nil {
		return err
	}
	n, err := p.killAll(ctx, d)
	if err != nil {
		return err
	}
	if n > 0 {
		p.log.Info("desktop stopped", "desktop", d.st.Name, "processes", n)
	}
	return p.clearRunning(d, lobby.PowerStopped)
}

// killAll ends every process of d and waits until they are gone. It
// returns how many there were.
func (p *Provider) killAll(ctx context.Context, d *desktop) (int, error) {
	p.mu.Lock()
	roots := d.st.keys()
	p.mu.Unlock()
	fam := p.family(d, roots)
	if len(fam) == 0 {
		return 0, nil
	}
	signalAll(fam, syscall.SIGTERM)
	signalAll(fam, syscall.SIGCONT) // a stopped process acts on SIGTERM only once continued
	if waitGone(ctx, fam, p.cfg.StopGrace) {
		return len(fam), nil
	}
	fam = append(fam, p.family(d, roots)...) // and whatever they started meanwhile
	p.log.Warn("processes ignored SIGTERM: killing them", "desktop", d.st.Name, "grace", p.cfg.StopGrace)
	signalAll(fam, syscall.SIGKILL)
	if waitGone(ctx, fam, killWait) {
		return len(fam), nil
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("stop desktop %s: %w", d.st.Name, err)
	}
	return 0, fmt.Errorf("stop desktop %s: processes still alive after SIGKILL: %v", d.st.Name, pidsOf(fam))
}

// family returns the live processes of d (see the function family).
func (p *Provider) family(d *desktop, roots []procKey) []procKey {
	p.mu.Lock()
	byUID, uid := d.st.UserCreated, d.st.UID
	p.mu.Unlock()
	return family(roots, byUID, uid)
}

func pidsOf(keys []procKey) []int {
	var out []int
	for _, k := range keys {
		if k.alive() {
			out = append(out, k.PID)
		}
	}
	return out
}

// waitGone polls until every process of keys is gone, or timeout or ctx
// ends; it reports whether they are gone.
func waitGone(ctx context.Context, keys []procKey, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for anyAlive(keys) {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// clearRunning forgets d's processes, display and port after they are
// gone, removes stale X lock files, and records power as desired.
func (p *Provider) clearRunning(d *desktop, power lobby.PowerState) error {
	p.mu.Lock()
	display := d.st.Display
	x, _ := d.st.xvnc()
	p.mu.Unlock()
	if display != 0 {
		cleanDisplay(display, x.PID)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	d.st.Procs, d.st.Display, d.st.Port, d.st.Desired = nil, 0, 0, power
	return d.save()
}

// X lock files of display n.
func lockPath(n int) string   { return "/tmp/.X" + strconv.Itoa(n) + "-lock" }
func socketPath(n int) string { return "/tmp/.X11-unix/X" + strconv.Itoa(n) }

// xkmPath is where the X server of display n has its keymap compiled
// (its own XKM directory is not writable by a desktop's user). The server
// deletes it once loaded; one killed while starting leaves it, and the
// next Xvnc on n, run by another user, cannot replace it in the sticky
// /tmp: it exits with "Cannot open /tmp/server-N.xkm to write keyboard
// description".
func xkmPath(n int) string { return "/tmp/server-" + strconv.Itoa(n) + ".xkm" }

// cleanDisplay removes the lock file, socket and compiled keymap of
// display n when no live X server holds them: Xvnc removes them when it
// exits cleanly, not when it is killed.
func cleanDisplay(n, xvncPID int) {
	if b, err := os.ReadFile(lockPath(n)); err == nil {
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		if pid > 0 && pid != xvncPID {
			if ps, err := readStat(pid); err == nil && !dead(ps.state) {
				return // another server owns the display now
			}
		}
		_ = os.Remove(lockPath(n))
	}
	if _, err := os.Lstat(socketPath(n)); err == nil {
		if c, err := net.DialTimeout("unix", socketPath(n), 200*time.Millisecond); err == nil {
			c.Close()
			return
		}
		_ = os.Remove(socketPath(n))
	}
	_ = os.Remove(xkmPath(n))
}

// Suspend stops every process of a running desktop with SIGSTOP; its
// memory stays and the suspension survives an agent restart. Suspending a
// suspended desktop succeeds; a stopped one gives a KindConflict error.
func (p *Provider) Suspend(ctx context.Context, name string) error {
	d, err := p.lockOp(name)
	if err != nil {
		return err
	}
	defer d.op.Unlock()
	p.mu.Lock()
	pw := d.power()
	if pw == lobby.PowerRunning {
		d.st.Desired = lobby.PowerSuspended
		err = d.save()
	}
	roots := d.st.keys()
	p.mu.Unlock()
	switch {
	case pw == lobby.PowerStopped:
		return lobby.Errorf(lobby.KindConflict, "desktop %s is stopped: start it instead of suspending it", name)
	case pw == lobby.PowerSuspended:
		return nil
	case err != nil:
		return err
	}
	// Stop until no new process appears: one may fork while we signal.
	stopped := map[procKey]bool{}
	for range 5 {
		var fresh []procKey
		for _, k := range p.family(d, roots) {
			if !stopped[k] {
				fresh = append(fresh, k)
				stopped[k] = true
			}
		}
		if len(fresh) == 0 {
			break
		}
		signalAll(fresh, syscall.SIGSTOP)
	}
	if err := p.waitPower(ctx, d, lobby.PowerSuspended); err != nil {
		return err
	}
	// Signals are delivered asynchronously: wait for the rest as well.
	if !waitStopped(ctx, stopped, 2*time.Second) {
		return fmt.Errorf("suspend desktop %s: some processes did not stop within 2s", name)
	}
	p.log.Info("desktop suspended", "desktop", name)
	return nil
}

// waitStopped waits until every process of keys is stopped (state 'T')
// or gone.
func waitStopped(ctx context.Context, keys map[procKey]bool, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		all := true
		for k := range keys {
			if ps, ok := k.status(); ok && ps.state != 'T' {
				all = false
				break
			}
		}
		if all {
			return true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Resume continues a suspended desktop, starts a stopped one, and leaves a
// running one as it is.
func (p *Provider) Resume(ctx context.Context, name string) (provider.Desktop, error) {
	d, err := p.lockOp(name)
	if err != nil {
		return provider.Desktop{}, err
	}
	defer d.op.Unlock()
	return p.resumeLocked(ctx, d)
}

func (p *Provider) resumeLocked(ctx context.Context, d *desktop) (provider.Desktop, error) {
	p.mu.Lock()
	pw := d.power()
	roots := d.st.keys()
	p.mu.Unlock()
	switch pw {
	case lobby.PowerStopped:
		return p.startLocked(ctx, d)
	case lobby.PowerSuspended:
		signalAll(p.family(d, roots), syscall.SIGCONT)
		if err := p.waitPower(ctx, d, lobby.PowerRunning); err != nil {
			return provider.Desktop{}, err
		}
		p.log.Info("desktop resumed", "desktop", d.st.Name)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	d.st.Desired = lobby.PowerRunning
	if err := d.save(); err != nil {
		return provider.Desktop{}, err
	}
	return d.view(), nil
}

// waitPower waits up to 2 s for the kernel to deliver a stop or continue
// signal to Xvnc.
func (p *Provider) waitPower(ctx context.Context, d *desktop, want lobby.PowerState) error {
	deadline := time.Now().Add(2 * time.Second)
	for {
		p.mu.Lock()
		pw := d.power()
		p.mu.Unlock()
		switch {
		case pw == want:
			return nil
		case pw == lobby.PowerStopped:
			return lobby.Errorf(lobby.KindConflict, "desktop %s stopped while changing to %s", d.st.Name, want)
		case ctx.Err() != nil:
			return ctx.Err()
		case time.Now().After(deadline):
			return fmt.Errorf("desktop %s: still %s 2s after signalling it", d.st.Name, pw)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// logTail returns the last lines of a log file, for error messages.
func logTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	if len(b) > 1500 {
		b = b[len(b)-1500:]
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 12 {
		lines = lines[len(lines)-12:]
	}
	return strings.Join(lines, "\n")
}
