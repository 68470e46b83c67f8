// Package provider defines how a host agent runs desktops. Implementations
// live in subpackages: local (real Xvnc desktops on the agent's machine),
// later vsphere and libvirt.
package provider

import (
	"context"
	"errors"
	"net"

	"lobby/internal/lobby"
)

// ErrNotFound is returned for a desktop the provider does not have.
var ErrNotFound = errors.New("desktop not found")

// Desktop is what a provider knows of one desktop.
type Desktop struct {
	Name        string
	Power       lobby.PowerState // PowerRunning, PowerStopped or PowerSuspended
	ConsoleKind string           // "vnc"
	ConsolePort int              // on the host's loopback; 0 when not running
	Template    string
}

// Spec describes a desktop to create.
type Spec struct {
	Name     string
	Template string // "default" or a template the provider knows
}

// Provider runs desktops on one host. Every method is safe for concurrent
// use and idempotent where the name says so: starting a running desktop,
// stopping a stopped one, or deleting a missing one succeeds.
type Provider interface {
	// Name is the provider kind, e.g. "local".
	Name() string
	// Create makes a new stopped desktop; it fails if the name exists.
	Create(ctx context.Context, spec Spec) (Desktop, error)
	Start(ctx context.Context, name string) (Desktop, error)
	Stop(ctx context.Context, name string) error
	Suspend(ctx context.Context, name string) error
	Resume(ctx context.Context, name string) (Desktop, error)
	Delete(ctx context.Context, name string) error
	Get(ctx context.Context, name string) (Desktop, error)
	// List returns every desktop the provider has, discovering ones left by
	// an earlier run (and re-adopting those still running).
	List(ctx context.Context) ([]Desktop, error)
	// DialConsole connects to a running desktop's console and performs the
	// console's own authentication with the secret that only the provider
	// holds. For VNC the returned stream is positioned just after a
	// successful RFB SecurityResult (protocol 3.8): the next bytes the
	// caller writes are the ClientInit.
	DialConsole(ctx context.Context, name string) (net.Conn, error)
	// Close stops supervising desktops without stopping them: running
	// desktops keep running and are re-adopted by the next run.
	Close() error
}
