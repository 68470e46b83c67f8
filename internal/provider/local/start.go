package local

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"lobby/internal/lobby"
	"lobby/internal/provider"
)

// startAttempts is how often Start tries another display and port when
// Xvnc finds the ones it was given taken (another program, or another
// agent on the machine, took them between our check and Xvnc's bind).
const startAttempts = 3

// Start starts a desktop: Xvnc on a free display and loopback port, then
// the session as the desktop's user. Starting a running desktop succeeds;
// starting a suspended one resumes it. A missing session command gives a
// KindUnavailable error naming the package to install.
func (p *Provider) Start(ctx context.Context, name string) (provider.Desktop, error) {
	d, err := p.lockOp(name)
	if err != nil {
		return provider.Desktop{}, err
	}
	defer d.op.Unlock()
	p.mu.Lock()
	pw := d.power()
	p.mu.Unlock()
	if pw != lobby.PowerStopped {
		return p.resumeLocked(ctx, d)
	}
	return p.startLocked(ctx, d)
}

// startLocked starts a stopped desktop; the caller holds d.op.
func (p *Provider) startLocked(ctx context.Context, d *desktop) (provider.Desktop, error) {
	// Leftovers of a run that died: kill them and free the display.
	if _, err := p.killAll(ctx, d); err != nil {
		return provider.Desktop{}, err
	}
	if err := p.clearRunning(d, lobby.PowerStopped); err != nil {
		return provider.Desktop{}, err
	}
	session, err := p.sessionCommands()
	if err != nil {
		return provider.Desktop{}, err
	}
	ensureX11Dir()
	for attempt := 1; ; attempt++ {
		err = p.startXvnc(ctx, d)
		if err == nil {
			break
		}
		if cerr := p.clearRunning(d, lobby.PowerStopped); cerr != nil {
			p.log.Warn("clear failed start", "desktop", d.st.Name, "err", cerr)
		}
		if !errors.Is(err, errAddrTaken) || attempt == startAttempts {
			return provider.Desktop{}, fmt.Errorf("start desktop %s: %w", d.st.Name, err)
		}
		p.log.Info("display or port taken, trying others", "desktop", d.st.Name, "err", err)
	}
	if err := p.startSession(d, session); err != nil {
		if kerr := p.stopLocked(context.Background(), d); kerr != nil {
			p.log.Warn("stop after failed session", "desktop", d.st.Name, "err", kerr)
		}
		return provider.Desktop{}, fmt.Errorf("start desktop %s: %w", d.st.Name, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	d.st.Desired = lobby.PowerRunning
	if err := d.save(); err != nil {
		return provider.Desktop{}, err
	}
	x, _ := d.st.xvnc()
	p.log.Info("desktop started", "desktop", d.st.Name, "display", d.st.Display, "port", d.st.Port, "pid", x.PID, "user", d.st.User)
	return d.view(), nil
}

// sessionCommands resolves the session's programs in PATH.
func (p *Provider) sessionCommands() ([][]string, error) {
	out := make([][]string, len(p.cfg.Session))
	for i, argv := range p.cfg.Session {
		path, err := exec.LookPath(argv[0])
		if err != nil {
			return nil, lobby.Errorf(lobby.KindUnavailable, "desktop session program %q not found: install it (apt-get install twm xterm for the default session) or configure another session command", argv[0])
		}
		out[i] = append([]string{path}, argv[1:]...)
	}
	return out, nil
}

// ensureX11Dir creates /tmp/.X11-unix as root with mode 1777 so that Xvnc,
// running unprivileged, does not create it as its own user.
func ensureX11Dir() {
	if os.Geteuid() != 0 {
		return
	}
	if err := os.Mkdir("/tmp/.X11-unix", 0o777); err == nil {
		_ = os.Chmod("/tmp/.X11-unix", 0o777|os.ModeSticky)
	}
}

// errAddrTaken marks an Xvnc start that failed because its display or
// port was taken.
var errAddrTaken = errors.New("display or port taken")

// startXvnc allocates a display and port, starts Xvnc and waits until it
// accepts connections.
func (p *Provider) startXvnc(ctx context.Context, d *desktop) error {
	display, port, err := p.allocate(d)
	if err != nil {
		return err
	}
	args := []string{
		":" + strconv.Itoa(display),
		"-localhost",
		"-rfbport", strconv.Itoa(port),
		"-SecurityTypes", "VncAuth",
		"-PasswordFile", filepath.Join(d.dir, passwdFile),
		"-auth", filepath.Join(d.dir, xauthFile),
		"-geometry", p.cfg.Geometry,
		"-depth", strconv.Itoa(p.cfg.Depth),
		"-desktop", d.st.Name,
		"-nolisten", "tcp",
		// No GLX: it loads Mesa's software renderer and LLVM, 51 MiB of
		// each desktop's 70 MiB Pss, for a session (twm, xterm) that
		// never uses OpenGL (BENCHMARKS.md, memory).
		"-extension", "GLX",
	}
	exited, err := p.launch(d, roleXvnc, append([]string{p.cfg.Xvnc}, args...), p.env(d, 0), xvncLog, true)
	if err != nil {
		return err
	}
	p.mu.Lock()
	x, _ := d.st.xvnc()
	p.mu.Unlock()
	return p.waitListening(ctx, d, x.PID, port, exited)
}

// waitListening polls until Xvnc (pid) listens on port, exits, or the
// start timeout passes.
func (p *Provider) waitListening(ctx context.Context, d *desktop, pid, port int, exited <-chan struct{}) error {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(p.cfg.StartTimeout)
	lastErr := "" // why the sockets could not be read, for the timeout's message
	for {
		select {
		case <-exited:
			tail := logTail(filepath.Join(d.dir, xvncLog))
			if addrTaken(tail) {
				return fmt.Errorf("%w: Xvnc exited: %s", errAddrTaken, tail)
			}
			return fmt.Errorf("Xvnc exited at start: %s", tail)
		default:
		}
		// A connection is cheap and says someone listens; only then is
		// the socket table read (its cost grows with the host's sockets)
		// to see whether it is our Xvnc.
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			ok, err := listensOn(pid, port)
			if ok {
				return nil
			}
			if err != nil {
				lastErr = fmt.Sprintf("reading Xvnc's sockets: %v; ", err)
			}
		}
		if err := ctx.Err(); err != nil {
			_, _ = p.killAll(context.Background(), d)
			return err
		}
		if time.Now().After(deadline) {
			_, _ = p.killAll(context.Background(), d)
			return fmt.Errorf("Xvnc did not listen on %s within %s: %s%s", addr, p.cfg.StartTimeout, lastErr, logTail(filepath.Join(d.dir, xvncLog)))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// addrTaken reports whether Xvnc's log says its display or port was taken:
// "Server is already active for display N", "failed to bind socket:
// Address already in use", or "Cannot establish any listening sockets".
func addrTaken(log string) bool {
	for _, s := range []string{"already active", "Address already in use", "establish any listening sockets"} {
		if strings.Contains(log, s) {
			return true
		}
	}
	return false
}

// allocate picks a free display and port and records them in d's state,
// so that concurrent starts of other desktops skip them. A display is free
// when neither its lock file nor its socket exists; a port when it can be
// bound on the loopback addresses. The search starts at a random point so
// that agents sharing a machine rarely race for the same one.
func (p *Provider) allocate(d *desktop) (display, port int, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	usedDisplays, usedPorts := map[int]bool{}, map[int]bool{}
	for _, o := range p.desktops {
		usedDisplays[o.st.Display], usedPorts[o.st.Port] = true, true
	}
	display = pick(p.cfg.DisplayMin, p.cfg.DisplayMax, func(n int) bool {
		return !usedDisplays[n] && !exists(lockPath(n)) && !exists(socketPath(n)) && noStaleKeymap(n)
	})
	port = pick(p.cfg.PortMin, p.cfg.PortMax, func(n int) bool { return !usedPorts[n] && portFree(n) })
	switch {
	case display == 0:
		return 0, 0, lobby.Errorf(lobby.KindUnavailable, "no free X display between :%d and :%d: stop some desktops or widen the display range", p.cfg.DisplayMin, p.cfg.DisplayMax)
	case port == 0:
		return 0, 0, lobby.Errorf(lobby.KindUnavailable, "no free port between %d and %d on 127.0.0.1: stop some desktops or widen the port range", p.cfg.PortMin, p.cfg.PortMax)
	}
	d.st.Display, d.st.Port = display, port
	return display, port, d.save()
}

// pick returns the first n in [lo, hi], from a random start and wrapping
// around, for which free(n) holds; 0 when none does.
func pick(lo, hi int, free func(int) bool) int {
	size := hi - lo + 1
	start := rand.IntN(size)
	for i := range size {
		if n := lo + (start+i)%size; free(n) {
			return n
		}
	}
	return 0
}

func exists(path string) bool { _, err := os.Lstat(path); return err == nil }

// noStaleKeymap removes the keymap a killed X server left for display n,
// which no server holds (n has no lock file), and reports whether none is
// left: an agent not run as root cannot remove another user's, and must
// take another display.
func noStaleKeymap(n int) bool {
	err := os.Remove(xkmPath(n))
	return err == nil || errors.Is(err, fs.ErrNotExist)
}

// portFree reports whether port can be bound on 127.0.0.1 and, where the
// machine has IPv6, on ::1 (Xvnc -localhost binds both).
func portFree(port int) bool {
	l, err := net.Listen("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	l.Close()
	l6, err := net.Listen("tcp6", net.JoinHostPort("::1", strconv.Itoa(port)))
	if err != nil {
		return !errors.Is(err, syscall.EADDRINUSE)
	}
	l6.Close()
	return true
}

// startSession starts the session's programs on d's display.
func (p *Provider) startSession(d *desktop, session [][]string) error {
	p.mu.Lock()
	display := d.st.Display
	p.mu.Unlock()
	for i, argv := range session {
		if _, err := p.launch(d, roleSession, argv, p.env(d, display), sessionLog, i == 0); err != nil {
			return err
		}
	}
	return nil
}

// env is the environment of d's processes; display 0 leaves DISPLAY out.
func (p *Provider) env(d *desktop, display int) []string {
	home := filepath.Join(d.dir, homeDirName)
	shell := "/bin/sh"
	if exists("/bin/bash") {
		shell = "/bin/bash"
	}
	path := os.Getenv("PATH")
	if path == "" {
		path = "/usr/local/bin:/usr/bin:/bin"
	}
	p.mu.Lock()
	user := d.st.User
	p.mu.Unlock()
	env := []string{
		"HOME=" + home, "USER=" + user, "LOGNAME=" + user, "PATH=" + path,
		// The desktop user's login shell is nologin; xterm needs a real one.
		"SHELL=" + shell, "LANG=C.UTF-8",
		"XAUTHORITY=" + filepath.Join(d.dir, xauthFile),
	}
	if display != 0 {
		env = append(env, "DISPLAY=:"+strconv.Itoa(display))
		// Nothing runs xrdb; Xlib merges XENVIRONMENT into every client's
		// resources instead.
		if res := filepath.Join(home, ".Xresources"); exists(res) {
			env = append(env, "XENVIRONMENT="+res)
		}
	}
	return env
}

// launch starts one process of d as the desktop's user, in its own process
// group, with output to logName in d's directory, records it in d's state,
// and reaps it in the background. The returned channel closes when it
// exits.
func (p *Provider) launch(d *desktop, role string, argv, env []string, logName string, truncate bool) (<-chan struct{}, error) {
	flags := os.O_WRONLY | os.O_CREATE | os.O_APPEND
	if truncate {
		flags |= os.O_TRUNC
	}
	logf, err := os.OpenFile(filepath.Join(d.dir, logName), flags, 0o600)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	p.mu.Lock()
	attr := &syscall.SysProcAttr{Setpgid: true}
	if os.Geteuid() == 0 {
		attr.Credential = &syscall.Credential{Uid: d.st.UID, Gid: d.st.GID, Groups: []uint32{}}
	}
	p.mu.Unlock()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = filepath.Join(d.dir, homeDirName)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logf, logf // files, not pipes: they outlive the agent
	cmd.SysProcAttr = attr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", filepath.Base(argv[0]), err)
	}
	// Our unreaped child cannot vanish from /proc before we read it.
	ps, err := readStat(cmd.Process.Pid)
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, fmt.Errorf("start %s: %w", filepath.Base(argv[0]), err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
		p.check(d)
	}()
	p.mu.Lock()
	defer p.mu.Unlock()
	d.st.Procs = append(d.st.Procs, procRecord{Role: role, Command: filepath.Base(argv[0]), procKey: procKey{PID: ps.pid, Start: ps.start}})
	return exited, d.save()
}
