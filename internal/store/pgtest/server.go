package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"lobby/internal/freeport"
	"lobby/internal/osuser"

	"github.com/jackc/pgx/v5"
)

// BinDir is where Debian's postgresql-15 package installs the server.
const BinDir = "/usr/lib/postgresql/15/bin"

// Server is a throwaway PostgreSQL server started by Start.
type Server struct {
	dir  string
	port int
	cmd  *exec.Cmd
	log  *bytes.Buffer // guarded by logMu
	done chan struct{} // closed when the postmaster exited
	err  error         // Wait's result, set before done is closed

	logMu    sync.Mutex
	stopOnce sync.Once
}

// Start runs a PostgreSQL server with its data and socket directories under
// dir (created if missing), in the foreground of a child process in its own
// process group, as the "postgres" user when we are root. It returns when
// the server accepts connections. The server is tuned for tests: no fsync,
// no durability. Stop it with Stop.
//
// Every ancestor of dir must be searchable by the postgres user (mode 0755
// or so): t.TempDir() is not, a directory made with os.MkdirTemp("", ...)
// and chmod 0755 is.
func Start(ctx context.Context, dir string) (*Server, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	cred, err := serverCredential()
	if err != nil {
		return nil, err
	}
	data, sock := filepath.Join(dir, "data"), filepath.Join(dir, "sock")
	if err := prepareDirs(dir, cred, data, sock); err != nil {
		return nil, err
	}
	if err := initdb(ctx, data, cred); err != nil {
		return nil, err
	}
	// Another process may take the free port before the server binds it;
	// try a few times.
	for attempt := 0; ; attempt++ {
		s, err := start(ctx, dir, data, sock, cred)
		if err == nil {
			return s, nil
		}
		if attempt == 4 || ctx.Err() != nil || !errors.Is(err, errPortTaken) {
			return nil, err
		}
	}
}

var errPortTaken = errors.New("port taken")

// serverCredential returns the user to run PostgreSQL as: postgres when we
// are root (PostgreSQL refuses to run as root), nil (ourselves) otherwise.
func serverCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	cred, err := osuser.Credential("postgres")
	if err != nil {
		return nil, fmt.Errorf("pgtest: running as root, and PostgreSQL refuses root: %w (install postgresql-15, which creates the postgres user)", err)
	}
	return cred, nil
}

// prepareDirs creates dir, the data and socket directories, hands them to
// cred, and checks that cred can reach them.
func prepareDirs(dir string, cred *syscall.Credential, subdirs ...string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	if cred != nil {
		if err := checkReachable(dir); err != nil {
			return err
		}
	}
	for _, d := range subdirs {
		if err := os.Mkdir(d, 0o700); err != nil {
			return fmt.Errorf("pgtest: %w", err)
		}
		if cred != nil {
			if err := os.Chown(d, int(cred.Uid), int(cred.Gid)); err != nil {
				return fmt.Errorf("pgtest: %w", err)
			}
		}
	}
	return nil
}

// checkReachable checks that dir and each of its ancestors can be searched
// by other users, so that the postgres user reaches the directories we
// create in it.
func checkReachable(dir string) error {
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("pgtest: %w", err)
		}
		if fi.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("pgtest: the postgres user cannot reach %s: %s has mode %v; use a directory whose parents are searchable (e.g. os.MkdirTemp(\"\", ...) then chmod 0755; not t.TempDir())", dir, d, fi.Mode().Perm())
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}

func initdb(ctx context.Context, data string, cred *syscall.Credential) error {
	cmd := exec.CommandContext(ctx, filepath.Join(BinDir, "initdb"),
		"--no-sync", "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C", "-D", data)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true}
	cmd.Dir = data
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("pgtest: initdb: %w\n%s", err, out)
	}
	return nil
}

func start(ctx context.Context, dir, data, sock string, cred *syscall.Credential) (*Server, error) {
	port, err := freeport.Pick()
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	s := &Server{dir: dir, port: port, log: new(bytes.Buffer), done: make(chan struct{})}
	s.cmd = exec.Command(filepath.Join(BinDir, "postgres"),
		"-D", data, "-k", sock, "-p", strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=300", "-c", "shared_buffers=128MB",
		"-c", "log_min_messages=warning", "-c", "log_min_error_statement=panic")
	s.cmd.Dir = data
	s.cmd.Stdout = (*lockedWriter)(s)
	s.cmd.Stderr = (*lockedWriter)(s)
	s.cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: cred,
		Setpgid:    true,
		// If we die without stopping it, the postmaster dies too (its
		// backends follow it).
		Pdeathsig: syscall.SIGKILL,
	}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("pgtest: start postgres: %w", err)
	}
	go func() {
		s.err = s.cmd.Wait()
		close(s.done)
	}()
	if err := s.waitReady(ctx); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// waitReady polls until the server accepts a connection, it exits, or 30
// seconds pass.
func (s *Server) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		select {
		case <-s.done:
			out := s.Log()
			if bytes.Contains([]byte(out), []byte("Address already in use")) {
				return fmt.Errorf("pgtest: %w: %s", errPortTaken, out)
			}
			return fmt.Errorf("pgtest: postgres exited (%v):\n%s", s.err, out)
		case <-ctx.Done():
			return fmt.Errorf("pgtest: postgres did not accept connections: %w\n%s", ctx.Err(), s.Log())
		case <-time.After(20 * time.Millisecond):
		}
		cctx, ccancel := context.WithTimeout(ctx, time.Second)
		conn, err := pgx.Connect(cctx, s.URL())
		ccancel()
		if err == nil {
			conn.Close(ctx)
			return nil
		}
	}
}

// URL returns the server's connection URL (superuser postgres, database
// postgres, over TCP on loopback).
func (s *Server) URL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", s.port)
}

// Dir returns the directory holding the server's data and socket.
func (s *Server) Dir() string { return s.dir }

// Log returns what the server wrote so far.
func (s *Server) Log() string {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	return s.log.String()
}

// Stop shuts the server down and waits for it: a fast shutdown (SIGINT to
// the postmaster, which disconnects clients), then SIGKILL to its whole
// process group after 10 seconds. It is safe to call more than once.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		pgid := s.cmd.Process.Pid
		_ = syscall.Kill(pgid, syscall.SIGINT)
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-s.done
		}
		// Backends may outlive a killed postmaster for a moment.
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	})
	var exitErr *exec.ExitError
	if s.err != nil && !errors.As(s.err, &exitErr) {
		return s.err
	}
	return nil
}

type lockedWriter Server

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.logMu.Lock()
	defer w.logMu.Unlock()
	if w.log.Len() > 1<<20 {
		w.log.Reset()
	}
	return w.log.Write(p)
}
