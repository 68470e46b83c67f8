// Package memory is a provider.Provider that keeps desktops in memory and
// runs no processes: a benchmark and test tool, not a way to run desktops.
// Its consoles are synthetic RFB sources (see Source) that answer every
// FramebufferUpdateRequest with a full-screen Raw rectangle as fast as the
// reader takes it, so relays (gateway, links) can be measured and tested
// without Xvnc.
package memory

import (
	"context"
	"fmt"
	"net"
	"sort"
	"sync"

	"lobby/internal/lobby"
	"lobby/internal/provider"
)

var _ provider.Provider = (*Provider)(nil)

// Config configures a memory provider.
type Config struct {
	// Width and Height of every desktop's synthetic framebuffer; default
	// 1280x800.
	Width, Height int
}

func (c *Config) validate() error {
	if c.Width == 0 && c.Height == 0 {
		c.Width, c.Height = 1280, 800
	}
	if c.Width < 1 || c.Width > MaxSize || c.Height < 1 || c.Height > MaxSize {
		return lobby.Errorf(lobby.KindInvalid, "synthetic framebuffer %dx%d is not valid: use 1 to %d pixels each way", c.Width, c.Height, MaxSize)
	}
	return nil
}

// Provider keeps desktops in memory. It is safe for concurrent use.
type Provider struct {
	src *Source

	mu       sync.Mutex
	desktops map[string]*provider.Desktop
}

// New returns an empty memory provider.
func New(cfg Config) (*Provider, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Provider{
		src:      &Source{Width: uint16(cfg.Width), Height: uint16(cfg.Height)},
		desktops: map[string]*provider.Desktop{},
	}, nil
}

// Name returns "memory".
func (p *Provider) Name() string { return "memory" }

// Create adds a stopped desktop. Any template name is accepted ("default"
// when empty). It returns a KindConflict error if the name exists.
func (p *Provider) Create(ctx context.Context, spec provider.Spec) (provider.Desktop, error) {
	if err := lobby.ValidName("desktop", spec.Name); err != nil {
		return provider.Desktop{}, err
	}
	if spec.Template == "" {
		spec.Template = "default"
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.desktops[spec.Name]; ok {
		return provider.Desktop{}, lobby.Errorf(lobby.KindConflict, "desktop %s already exists", spec.Name)
	}
	d := &provider.Desktop{Name: spec.Name, Power: lobby.PowerStopped, ConsoleKind: "vnc", Template: spec.Template}
	p.desktops[spec.Name] = d
	return *d, nil
}

// setPower moves a desktop to power after check allows its current state.
func (p *Provider) setPower(name string, power lobby.PowerState, check func(*provider.Desktop) error) (provider.Desktop, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	d, ok := p.desktops[name]
	if !ok {
		return provider.Desktop{}, fmt.Errorf("%s: %w", name, provider.ErrNotFound)
	}
	if check != nil {
		if err := check(d); err != nil {
			return provider.Desktop{}, err
		}
	}
	d.Power = power
	return *d, nil
}

// Start marks a desktop running; starting a running desktop succeeds.
func (p *Provider) Start(ctx context.Context, name string) (provider.Desktop, error) {
	return p.setPower(name, lobby.PowerRunning, nil)
}

// Stop marks a desktop stopped; stopping a stopped desktop succeeds.
func (p *Provider) Stop(ctx context.Context, name string) error {
	_, err := p.setPower(name, lobby.PowerStopped, nil)
	return err
}

// Suspend marks a running desktop suspended. A stopped desktop gives a
// KindConflict error.
func (p *Provider) Suspend(ctx context.Context, name string) error {
	_, err := p.setPower(name, lobby.PowerSuspended, func(d *provider.Desktop) error {
		if d.Power == lobby.PowerStopped {
			return lobby.Errorf(lobby.KindConflict, "desktop %s is stopped: start it instead of suspending it", name)
		}
		return nil
	})
	return err
}

// Resume marks a desktop running, from suspended or stopped.
func (p *Provider) Resume(ctx context.Context, name string) (provider.Desktop, error) {
	return p.setPower(name, lobby.PowerRunning, nil)
}

// Delete forgets a desktop; deleting a missing desktop succeeds.
func (p *Provider) Delete(ctx context.Context, name string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.desktops, name)
	return nil
}

// Get returns a desktop or an error wrapping provider.ErrNotFound.
func (p *Provider) Get(ctx context.Context, name string) (provider.Desktop, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	d, ok := p.desktops[name]
	if !ok {
		return provider.Desktop{}, fmt.Errorf("%s: %w", name, provider.ErrNotFound)
	}
	return *d, nil
}

// List returns every desktop, sorted by name.
func (p *Provider) List(ctx context.Context) ([]provider.Desktop, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]provider.Desktop, 0, len(p.desktops))
	for _, d := range p.desktops {
		out = append(out, *d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// DialConsole returns one end of an in-memory connection to the desktop's
// synthetic RFB source, already past authentication: the next bytes the
// caller writes are ClientInit. The desktop must be running (a
// KindConflict error otherwise).
func (p *Provider) DialConsole(ctx context.Context, name string) (net.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	d, err := p.Get(ctx, name)
	if err != nil {
		return nil, err
	}
	if d.Power != lobby.PowerRunning {
		return nil, lobby.Errorf(lobby.KindConflict, "desktop %s is %s, not running: start it first", name, d.Power)
	}
	client, server := net.Pipe()
	go func() {
		defer server.Close()
		_ = p.src.serve(server, name)
	}()
	return client, nil
}

// Close does nothing: there is nothing to supervise.
func (p *Provider) Close() error { return nil }
