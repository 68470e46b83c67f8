package local

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"time"

	"lobby/internal/datadir"
	"lobby/internal/lobby"
	"lobby/internal/provider"
)

var _ provider.Provider = (*Provider)(nil)

// superviseInterval is how often desktops adopted from an earlier run are
// checked through /proc (this run's children are reaped as they exit).
const superviseInterval = time.Second

// errClosed is returned by every method after Close.
var errClosed = lobby.Errorf(lobby.KindUnavailable, "local provider is closed")

// Provider runs desktops as Xvnc displays on this machine. It is safe for
// concurrent use: operations on one desktop run one at a time, operations
// on different desktops run in parallel.
type Provider struct {
	cfg           Config
	id            identity
	log           *slog.Logger
	width, height int
	desktopsDir   string
	lock          *os.File // flock held on StateDir/lock while open
	stop          chan struct{}
	wg            sync.WaitGroup

	mu       sync.Mutex
	desktops map[string]*desktop
	closed   bool
}

// desktop is one desktop the provider knows.
type desktop struct {
	op  sync.Mutex // serializes Create, Start, Stop, Suspend, Resume, Delete
	dir string

	// Guarded by Provider.mu.
	st       *state
	gone     bool // deleted, or its Create failed
	cleaning bool // a cleanup after Xvnc died is queued
}

// New returns a provider on cfg.StateDir, re-adopting desktops an earlier
// run left running. It fails when Xvnc is missing (with the command that
// installs it), when the configuration is not valid, or when the state
// directory cannot be used by the desktop users.
func New(cfg Config) (*Provider, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	id, err := cfg.resolveIdentity()
	if err != nil {
		return nil, err
	}
	p := &Provider{
		cfg:         cfg,
		id:          id,
		log:         cfg.Logger.With("provider", "local"),
		desktopsDir: filepath.Join(cfg.StateDir, "desktops"),
		stop:        make(chan struct{}),
		desktops:    map[string]*desktop{},
	}
	p.width, p.height, _ = parseGeometry(cfg.Geometry)
	if err := mkdirShared(cfg.StateDir); err != nil {
		return nil, err
	}
	if err := mkdirShared(p.desktopsDir); err != nil {
		return nil, err
	}
	if id.perDesktop || id.uid != uint32(os.Geteuid()) {
		if err := checkTraversable(p.desktopsDir); err != nil {
			return nil, err
		}
	}
	if p.lock, err = lockStateDir(cfg.StateDir); err != nil {
		return nil, err
	}
	p.discover()
	p.wg.Add(1)
	go p.supervise()
	return p, nil
}

// mkdirShared creates dir (and parents) as 0755 when it does not exist.
func mkdirShared(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("local provider: %w", err)
	}
	return os.Chmod(dir, 0o755) // whatever the umask
}

// lockStateDir takes an exclusive lock on dir/lock, so that two providers
// never supervise the same desktops. The descriptor is close-on-exec:
// desktops do not inherit the lock, which ends with the provider.
func lockStateDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("local provider: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, lobby.Errorf(lobby.KindConflict, "local provider: state dir %s is in use by another provider (another agent, or one not yet closed): stop it first", dir)
		}
		return nil, fmt.Errorf("local provider: lock state dir: %w", err)
	}
	return f, nil
}

// Name returns "local".
func (p *Provider) Name() string { return "local" }

// Close stops supervising; desktops keep running for the next provider on
// the same StateDir to re-adopt. Methods called afterwards fail.
func (p *Provider) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	close(p.stop)
	p.mu.Unlock()
	p.wg.Wait()
	return datadir.Unlock(p.lock)
}

// lookup returns a known desktop, or an error wrapping
// provider.ErrNotFound.
func (p *Provider) lookup(name string) (*desktop, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, errClosed
	}
	d, ok := p.desktops[name]
	if !ok || d.gone {
		return nil, fmt.Errorf("desktop %s: %w", name, provider.ErrNotFound)
	}
	return d, nil
}

// lockOp looks a desktop up and takes its operation lock; the caller
// unlocks d.op.
func (p *Provider) lockOp(name string) (*desktop, error) {
	d, err := p.lookup(name)
	if err != nil {
		return nil, err
	}
	d.op.Lock()
	p.mu.Lock()
	gone, closed := d.gone, p.closed
	p.mu.Unlock()
	switch {
	case closed:
		d.op.Unlock()
		return nil, errClosed
	case gone:
		d.op.Unlock()
		return nil, fmt.Errorf("desktop %s: %w", name, provider.ErrNotFound)
	}
	return d, nil
}

// power derives a desktop's power from /proc. Call with p.mu held.
func (d *desktop) power() lobby.PowerState {
	x, ok := d.st.xvnc()
	if !ok {
		return lobby.PowerStopped
	}
	ps, ok := x.status()
	switch {
	case !ok:
		return lobby.PowerStopped
	case ps.state == 'T':
		return lobby.PowerSuspended
	}
	return lobby.PowerRunning
}

// view returns what callers see of d. Call with p.mu held.
func (d *desktop) view() provider.Desktop {
	v := provider.Desktop{Name: d.st.Name, Power: d.power(), ConsoleKind: "vnc", Template: d.st.Template}
	if v.Power != lobby.PowerStopped {
		v.ConsolePort = d.st.Port
	}
	return v
}

// Get returns a desktop, or an error wrapping provider.ErrNotFound.
func (p *Provider) Get(ctx context.Context, name string) (provider.Desktop, error) {
	d, err := p.lookup(name)
	if err != nil {
		return provider.Desktop{}, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return d.view(), nil
}

// List returns every desktop sorted by name, first adopting desktops found
// on disk that this provider does not know yet.
func (p *Provider) List(ctx context.Context) ([]provider.Desktop, error) {
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		return nil, errClosed
	}
	p.discover()
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]provider.Desktop, 0, len(p.desktops))
	for _, d := range p.desktops {
		if !d.gone {
			out = append(out, d.view())
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// discover adopts the desktops on disk that are not in memory.
func (p *Provider) discover() {
	ents, err := os.ReadDir(p.desktopsDir)
	if err != nil {
		p.log.Warn("read desktops", "err", err)
		return
	}
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		p.mu.Lock()
		_, known := p.desktops[e.Name()]
		p.mu.Unlock()
		if known {
			continue
		}
		d, err := p.adopt(filepath.Join(p.desktopsDir, e.Name()))
		if err != nil {
			p.log.Warn("skip desktop directory", "dir", e.Name(), "err", err)
			continue
		}
		p.mu.Lock()
		if _, known := p.desktops[e.Name()]; !known {
			p.desktops[e.Name()] = d
		}
		p.mu.Unlock()
	}
}

// adopt loads a desktop an earlier run left. A desktop whose Xvnc is still
// alive is re-adopted as it is (running or suspended); any other is
// stopped: leftover processes are killed and stale X lock files removed.
func (p *Provider) adopt(dir string) (*desktop, error) {
	st, err := loadState(dir)
	if err != nil {
		return nil, err
	}
	d := &desktop{dir: dir, st: st}
	if x, ok := st.xvnc(); ok && x.alive() {
		p.log.Info("re-adopted desktop", "desktop", st.Name, "pid", x.PID, "display", st.Display, "port", st.Port, "power", d.power())
		return d, nil
	}
	if len(st.Procs) > 0 || st.Display != 0 {
		p.log.Info("desktop stopped while no agent watched it", "desktop", st.Name)
		if _, err := p.killAll(context.Background(), d); err != nil {
			p.log.Warn("stop leftover processes", "desktop", st.Name, "err", err)
		}
		if err := p.clearRunning(d, lobby.PowerStopped); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// supervise checks every desktop periodically until Close.
func (p *Provider) supervise() {
	defer p.wg.Done()
	t := time.NewTicker(superviseInterval)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
		p.mu.Lock()
		ds := make([]*desktop, 0, len(p.desktops))
		for _, d := range p.desktops {
			ds = append(ds, d)
		}
		p.mu.Unlock()
		for _, d := range ds {
			p.check(d)
		}
	}
}

// check stops a desktop whose Xvnc died while it should run.
func (p *Provider) check(d *desktop) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || d.gone || d.cleaning || d.st.Desired == lobby.PowerStopped {
		return
	}
	x, ok := d.st.xvnc()
	if !ok || x.alive() {
		return
	}
	d.cleaning = true
	go p.cleanupDead(d, x)
}

// cleanupDead stops what is left of a desktop whose Xvnc x died.
func (p *Provider) cleanupDead(d *desktop, x procKey) {
	d.op.Lock()
	defer d.op.Unlock()
	p.mu.Lock()
	cur, ok := d.st.xvnc()
	stale := p.closed || d.gone || !ok || cur != x
	d.cleaning = false
	p.mu.Unlock()
	if stale {
		return
	}
	p.log.Warn("Xvnc exited unexpectedly: desktop stopped", "desktop", d.st.Name, "pid", x.PID, "log", logTail(filepath.Join(d.dir, xvncLog)))
	if _, err := p.killAll(context.Background(), d); err != nil {
		p.log.Warn("stop session", "desktop", d.st.Name, "err", err)
	}
	if err := p.clearRunning(d, lobby.PowerStopped); err != nil {
		p.log.Warn("save state", "desktop", d.st.Name, "err", err)
	}
}

// save writes d's state. Call with p.mu held.
func (d *desktop) save() error { return saveState(d.dir, d.st) }
