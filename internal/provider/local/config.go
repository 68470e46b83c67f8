package local

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"lobby/internal/osuser"

	"lobby/internal/lobby"
)

// Config configures a local provider. Zero fields take the defaults given.
type Config struct {
	// StateDir holds templates and desktops (required). When desktops run
	// as another user, it and its parents must be traversable by others
	// (mode 0755).
	StateDir string
	// Xvnc is the path of TigerVNC's Xvnc; default: Xvnc in PATH.
	Xvnc string
	// Session lists the commands started on each desktop's display, in
	// order; default twm and xterm. A missing command fails Start.
	Session [][]string
	// RunAsUser is an existing unprivileged user every desktop runs as.
	// Empty: one system user per desktop when the agent is root, the
	// agent's own user otherwise.
	RunAsUser string
	// PortMin and PortMax bound the VNC ports on 127.0.0.1; default
	// 15900-16899.
	PortMin, PortMax int
	// DisplayMin and DisplayMax bound the X display numbers; default
	// 100-999.
	DisplayMin, DisplayMax int
	// Geometry is the screen size, WIDTHxHEIGHT; default 1280x800.
	Geometry string
	// Depth is the colour depth; default 24.
	Depth int
	// StartTimeout bounds the wait for Xvnc to accept connections;
	// default 5s.
	StartTimeout time.Duration
	// StopGrace is how long processes get after SIGTERM before SIGKILL;
	// default 3s.
	StopGrace time.Duration
	// Logger receives the provider's log; default: discarded.
	Logger *slog.Logger
}

// defaultSession is the session started when Config.Session is empty.
func defaultSession() [][]string { return [][]string{{"twm"}, {"xterm"}} }

// errNoXvnc is the message for a machine without TigerVNC.
const errNoXvnc = "Xvnc not found: install tigervnc-standalone-server (apt-get install tigervnc-standalone-server twm xterm), or run `make run` which installs it"

func (c *Config) validate() error {
	if c.StateDir == "" {
		return lobby.Errorf(lobby.KindInvalid, "local provider: StateDir is required: give the directory where desktops are kept")
	}
	dir, err := filepath.Abs(c.StateDir)
	if err != nil {
		return fmt.Errorf("local provider: state dir: %w", err)
	}
	c.StateDir = dir
	if c.Xvnc == "" {
		c.Xvnc = "Xvnc"
	}
	if c.Xvnc, err = exec.LookPath(c.Xvnc); err != nil {
		return lobby.Errorf(lobby.KindUnavailable, "%s (%v)", errNoXvnc, err)
	}
	if len(c.Session) == 0 {
		c.Session = defaultSession()
	}
	for _, argv := range c.Session {
		if len(argv) == 0 || argv[0] == "" {
			return lobby.Errorf(lobby.KindInvalid, "local provider: a session command is empty")
		}
	}
	setDefault(&c.PortMin, 15900)
	setDefault(&c.PortMax, 16899)
	setDefault(&c.DisplayMin, 100)
	setDefault(&c.DisplayMax, 999)
	setDefault(&c.Depth, 24)
	if c.PortMin < 1024 || c.PortMax > 65535 || c.PortMin > c.PortMax {
		return lobby.Errorf(lobby.KindInvalid, "local provider: port range %d-%d is not valid: use ports between 1024 and 65535, lowest first", c.PortMin, c.PortMax)
	}
	if c.DisplayMin < 1 || c.DisplayMax > 65535 || c.DisplayMin > c.DisplayMax {
		return lobby.Errorf(lobby.KindInvalid, "local provider: display range %d-%d is not valid: use displays between 1 and 65535, lowest first", c.DisplayMin, c.DisplayMax)
	}
	if c.Geometry == "" {
		c.Geometry = "1280x800"
	}
	if _, _, err := parseGeometry(c.Geometry); err != nil {
		return err
	}
	switch c.Depth {
	case 16, 24, 32:
	default:
		return lobby.Errorf(lobby.KindInvalid, "local provider: depth %d is not valid: use 16, 24 or 32", c.Depth)
	}
	if c.StartTimeout <= 0 {
		c.StartTimeout = 5 * time.Second
	}
	if c.StopGrace <= 0 {
		c.StopGrace = 3 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

func setDefault(v *int, def int) {
	if *v == 0 {
		*v = def
	}
}

// parseGeometry parses WIDTHxHEIGHT.
func parseGeometry(g string) (w, h int, err error) {
	ws, hs, ok := strings.Cut(g, "x")
	w, err1 := strconv.Atoi(ws)
	h, err2 := strconv.Atoi(hs)
	if !ok || err1 != nil || err2 != nil || w < 16 || h < 16 || w > 16384 || h > 16384 {
		return 0, 0, lobby.Errorf(lobby.KindInvalid, "local provider: geometry %q is not valid: use WIDTHxHEIGHT, e.g. 1280x800", g)
	}
	return w, h, nil
}

// identity is who desktops run as.
type identity struct {
	perDesktop bool   // create one system user per desktop
	name       string // the fixed user, when not perDesktop
	uid, gid   uint32
}

// resolveIdentity decides who desktops run as (see Config.RunAsUser).
func (c *Config) resolveIdentity() (identity, error) {
	root := os.Geteuid() == 0
	if c.RunAsUser == "" {
		if root {
			return identity{perDesktop: true}, nil
		}
		u, err := user.Current()
		if err != nil {
			return identity{}, fmt.Errorf("local provider: current user: %w", err)
		}
		return identity{name: u.Username, uid: uint32(os.Geteuid()), gid: uint32(os.Getegid())}, nil
	}
	uid, gid, err := osuser.Lookup(c.RunAsUser)
	if err != nil {
		var unknown user.UnknownUserError
		if errors.As(err, &unknown) {
			return identity{}, lobby.Errorf(lobby.KindInvalid, "local provider: RunAsUser %q does not exist: create it (useradd --system %s) or leave RunAsUser empty", c.RunAsUser, c.RunAsUser)
		}
		return identity{}, fmt.Errorf("local provider: look up %s: %w", c.RunAsUser, err)
	}
	if uid == 0 {
		return identity{}, lobby.Errorf(lobby.KindInvalid, "local provider: RunAsUser %q is root: desktops never run as root; give an unprivileged user", c.RunAsUser)
	}
	if !root && uid != uint32(os.Geteuid()) {
		return identity{}, lobby.Errorf(lobby.KindInvalid, "local provider: cannot run desktops as %q: the agent is not root; run it as root or leave RunAsUser empty", c.RunAsUser)
	}
	return identity{name: c.RunAsUser, uid: uid, gid: gid}, nil
}

// checkTraversable makes sure a user other than the agent can reach dir:
// every directory from / down to dir must be searchable by others.
func checkTraversable(dir string) error {
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("local provider: %w", err)
		}
		if fi.Mode().Perm()&0o001 == 0 {
			return lobby.Errorf(lobby.KindInvalid, "local provider: desktop users cannot reach state dir %s: %s has mode %04o; make it and its parents traversable (chmod 0755), and do not use a private temporary directory", dir, d, fi.Mode().Perm())
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}
