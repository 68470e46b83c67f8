// Package datadir keeps what a node's data directory says about the node
// besides its files: the lock that lets one Lobby process use it at a time
// (a node, or an operator's `lobby admin db` command while the node is
// stopped), and the database the node was switched to. Its WriteFile is
// how every Lobby process replaces a small state file of its own (agent
// identity, desktop state, CLI login) without ever leaving a torn one.
package datadir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.yaml.in/yaml/v3"
)

// Files in a data directory.
const (
	LockFile   = "lobby.lock"
	ChoiceFile = "database.yaml"
	// SQLiteFile is the embedded database of a standalone node.
	SQLiteFile = "lobby.db"
)

// Lock is an exclusive lock on a data directory, held until Release or
// the process's end (the kernel drops it when a node dies).
type Lock struct{ f *os.File }

// ErrInUse is wrapped by Acquire's error when another process holds the
// directory.
var ErrInUse = errors.New("data directory in use")

// Acquire locks dir for what (e.g. "lobby server"), creating the lock file
// if needed. When another process holds it, the error wraps ErrInUse and
// names that process.
func Acquire(dir, what string) (*Lock, error) {
	path := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock data directory: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s is used by %s: stop it first", ErrInUse, dir, describeHolder(string(holder)))
		}
		return nil, fmt.Errorf("lock data directory %s: %w", dir, err)
	}
	if err := MatchOwner(dir, path); err != nil {
		Unlock(f)
		return nil, err
	}
	// Say who holds it, for the message another process will print.
	if err := f.Truncate(0); err == nil {
		fmt.Fprintf(f, "%d %s\n", os.Getpid(), what)
	}
	return &Lock{f: f}, nil
}

func describeHolder(s string) string {
	pid, what, ok := strings.Cut(strings.TrimSpace(s), " ")
	if _, err := strconv.Atoi(pid); !ok || err != nil {
		return "another Lobby process"
	}
	return fmt.Sprintf("%s (pid %s)", what, pid)
}

// MatchOwner gives files made in dir by root (an operator's command) to
// dir's owner, so that the node, running as that user, can use them.
func MatchOwner(dir string, paths ...string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	st, err := os.Stat(dir)
	if err != nil {
		return err
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok || sys.Uid == 0 {
		return nil
	}
	for _, p := range paths {
		if err := os.Lchown(p, int(sys.Uid), int(sys.Gid)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("give %s to the owner of %s: %w", p, dir, err)
		}
	}
	return nil
}

// Release unlocks the directory. It may be called more than once.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := Unlock(l.f)
	l.f = nil
	return err
}

// Unlock releases the flock on f, then closes f. Closing alone is not
// enough: a child that another goroutine forked and has not yet exec'd
// shares f's open file description, and the lock stays held until that
// child execs, so locking again at once in this process could be refused.
func Unlock(f *os.File) error {
	uerr := syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return errors.Join(uerr, f.Close())
}

// Database choices.
const (
	Embedded = "embedded"
	Postgres = "postgres"
)

// Choice is the database a node was switched to with `lobby admin db
// switch`; `lobby server` uses it when no --postgres is given.
type Choice struct {
	Database string    `yaml:"database"`           // Embedded or Postgres
	Postgres string    `yaml:"postgres,omitempty"` // the URL, with Postgres
	SiteID   int       `yaml:"site-id,omitempty"`  // with Postgres
	Switched time.Time `yaml:"switched"`
}

func (c Choice) validate() error {
	switch c.Database {
	case Embedded:
		return nil
	case Postgres:
		if c.Postgres == "" {
			return errors.New("database is postgres but no postgres URL is given")
		}
		if c.SiteID < 1 || c.SiteID > 65535 {
			return fmt.Errorf("site-id %d is not from 1 to 65535", c.SiteID)
		}
		return nil
	}
	return fmt.Errorf("database %q is neither %s nor %s", c.Database, Embedded, Postgres)
}

// ReadChoice reads dir's recorded choice; ok is false when there is none.
func ReadChoice(dir string) (c Choice, ok bool, err error) {
	path := filepath.Join(dir, ChoiceFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return Choice{}, false, nil // whoever uses dir says what is wrong with it
	}
	if err != nil {
		return Choice{}, false, fmt.Errorf("read %s: %w", path, err)
	}
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return Choice{}, false, fmt.Errorf("%s is not valid: %w; fix it or record the choice again with `lobby admin db switch`", path, err)
	}
	if err := c.validate(); err != nil {
		return Choice{}, false, fmt.Errorf("%s: %w; record the choice again with `lobby admin db switch`", path, err)
	}
	return c, true, nil
}

const choiceHeader = `# This node's database, recorded by ` + "`lobby admin db switch`" + `.
# ` + "`lobby server --data DIR`" + ` uses it when no --postgres (or LOBBY_POSTGRES)
# is given. Change it with ` + "`lobby admin db switch`" + `, which checks first.
`

// WriteChoice records c in dir, replacing the file atomically. The file
// is readable by its owner only: the URL may hold a password.
func WriteChoice(dir string, c Choice) error {
	if err := c.validate(); err != nil {
		return err
	}
	b, err := yaml.Marshal(c)
	if err != nil {
		return err
	}
	// The file goes to the directory's owner before it replaces the old
	// one, so a failure to give it leaves the old choice in place.
	toOwner := func(tmp string) error { return MatchOwner(dir, tmp) }
	if err := writeFile(filepath.Join(dir, ChoiceFile), []byte(choiceHeader+string(b)), 0o600, toOwner); err != nil {
		return fmt.Errorf("record the database choice: %w", err)
	}
	return nil
}
