package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"lobby/internal/freeport"
	"lobby/internal/osuser"
)

// child is a server run as a child process in its own process group, so
// that stopping it also stops what it forked (websockify forks a process
// per connection).
type child struct {
	name string
	cmd  *exec.Cmd
	out  lockedBuffer
	done chan struct{}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() > 64<<10 {
		return len(p), nil // enough to explain a failure
	}
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.TrimSpace(l.b.String())
}

// startChild starts argv; cred, when not nil, is the user to run as.
func startChild(name string, argv []string, env []string, cred *syscall.Credential) (*child, error) {
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	c := &child{name: name, done: make(chan struct{})}
	c.cmd = exec.Command(path, argv[1:]...)
	c.cmd.Env = append(os.Environ(), env...)
	c.cmd.Stdout, c.cmd.Stderr = &c.out, &c.out
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: cred}
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() { _ = c.cmd.Wait(); close(c.done) }()
	return c, nil
}

// pid is the child's process ID.
func (c *child) pid() int { return c.cmd.Process.Pid }

// exited reports whether the child has ended.
func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the child's process group, then SIGKILL after
// grace, and waits for the child.
func (c *child) stop(grace time.Duration) {
	if c == nil {
		return
	}
	pgid := c.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(grace):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-c.done
	}
	// Anything left in the group (forked workers) goes too.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

// waitListening dials addr until it answers, the child exits or timeout.
func (c *child) waitListening(ctx context.Context, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
			return nil
		}
		if c.exited() {
			return fmt.Errorf("%s exited before listening on %s: %s", c.name, addr, c.out.String())
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s not listening on %s after %s: %s", c.name, addr, timeout, c.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// unprivileged returns the credential of user "nobody" when we are root,
// nil (ourselves) otherwise.
func unprivileged() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	cred, err := osuser.Credential("nobody")
	if err != nil {
		return nil, fmt.Errorf("look up user nobody: %w", err)
	}
	return cred, nil
}

// startWebsockify runs Debian's websockify from a loopback port to target.
func startWebsockify(ctx context.Context, target string) (*child, string, error) {
	var lastErr error
	for range 3 { // the free port may be taken before websockify binds it
		port, err := freeport.Pick()
		if err != nil {
			return nil, "", err
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		c, err := startChild("websockify", []string{"websockify", addr, target}, nil, nil)
		if err != nil {
			return nil, "", fmt.Errorf("%w (install the websockify package: apt-get install websockify)", err)
		}
		if lastErr = c.waitListening(ctx, addr, 15*time.Second); lastErr == nil {
			return c, addr, nil
		}
		c.stop(time.Second)
	}
	return nil, "", lastErr
}

// xvnc is a bare TigerVNC server (no session) with security None on the
// loopback, run as nobody when we are root.
type xvnc struct {
	*child
	addr string
}

// startXvnc starts Xvnc on a free display and port, with extra
// arguments.
func startXvnc(ctx context.Context, geometry string, extra ...string) (*xvnc, error) {
	cred, err := unprivileged()
	if err != nil {
		return nil, err
	}
	lastErr := errors.New("displays 150 to 159 are all in use")
	for display := 150; display < 160; display++ {
		if lockHeld(fmt.Sprintf("/tmp/.X%d-lock", display)) {
			continue
		}
		port, err := freeport.Pick()
		if err != nil {
			return nil, err
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		argv := []string{"Xvnc", ":" + strconv.Itoa(display), "-rfbport", strconv.Itoa(port),
			"-localhost", "-SecurityTypes", "None", "-geometry", geometry, "-depth", "24", "-nolisten", "tcp"}
		c, err := startChild("Xvnc", append(argv, extra...), nil, cred)
		if err != nil {
			return nil, fmt.Errorf("%w (install tigervnc-standalone-server)", err)
		}
		if err = c.waitListening(ctx, addr, 30*time.Second); err == nil {
			return &xvnc{child: c, addr: addr}, nil
		}
		lastErr = err
		c.stop(time.Second)
	}
	return nil, fmt.Errorf("start Xvnc: %w", lastErr)
}

// lockHeld reports whether an X display's lock file names a live
// process. A lock that an Xvnc killed outright left behind is stale, and a
// new Xvnc replaces it; skipping those, the bench's ten displays ran out
// on a machine that keeps /tmp (four were stale here after a day).
func lockHeld(path string) bool {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return false
	}
	if err != nil {
		return true
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return true
	}
	return !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}
