package datadir

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestLock(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	l, err := Acquire(dir, "a Lobby node")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Acquire(dir, "lobby admin db switch")
	want := fmt.Sprintf("%s is used by a Lobby node (pid %d): stop it first", dir, os.Getpid())
	if !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), want) {
		t.Fatalf("second lock: %v, want ErrInUse with %q", err, want)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	l, err = Acquire(dir, "lobby admin db switch")
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	l.Release()
	l.Release() // twice is fine
}

// TestLockAgainWhileForking: a directory released is free at once, even
// while other goroutines start processes. A child forked and not yet
// exec'd shares the lock file's description; closing the file alone left
// the lock held until that child exec'd, and a node restarted in the same
// process was refused its own data directory.
func TestLockAgainWhileForking(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				_ = exec.Command("/bin/true").Run()
			}
		})
	}
	defer wg.Wait()
	defer close(stop)
	for i := range 300 {
		l, err := Acquire(dir, "a Lobby node")
		if err != nil {
			t.Fatalf("lock %d, after %d releases: %v", i+1, i, err)
		}
		if err := l.Release(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestChoice(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if _, ok, err := ReadChoice(dir); ok || err != nil {
		t.Fatalf("no file: ok %t, err %v", ok, err)
	}
	want := Choice{Database: Postgres, Postgres: "postgres://u:pw@db/lobby", SiteID: 3, Switched: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	if err := WriteChoice(dir, want); err != nil {
		t.Fatal(err)
	}
	got, ok, err := ReadChoice(dir)
	if err != nil || !ok || got != want {
		t.Fatalf("read back %+v, %t, %v; want %+v", got, ok, err, want)
	}
	if st, _ := os.Stat(filepath.Join(dir, ChoiceFile)); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
	if err := WriteChoice(dir, Choice{Database: Postgres, Postgres: "x"}); err == nil {
		t.Error("a choice without a site ID was written")
	}
	for body, wantErr := range map[string]string{
		"database: postgres\nsite-id: 2\n":              "no postgres URL",
		"database: mysql\n":                             "neither embedded nor postgres",
		"database: embedded\ncolour: blue\n":            "colour",
		"database: postgres\npostgres: x\nsite-id: 0\n": "site-id 0",
	} {
		if err := os.WriteFile(filepath.Join(dir, ChoiceFile), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, _, err := ReadChoice(dir); err == nil || !strings.Contains(err.Error(), wantErr) || !strings.Contains(err.Error(), "lobby admin db switch") {
			t.Errorf("%q: %v, want an error naming %q and the fix", body, err, wantErr)
		}
	}
}

// TestFilesGoToTheDirectorysOwner checks that files an operator's
// command makes as root belong to the user the node runs as.
func TestFilesGoToTheDirectorysOwner(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root to make files for another user")
	}
	dir := t.TempDir()
	const nobody = 65534
	if err := os.Chown(dir, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	l, err := Acquire(dir, "test")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	if err := WriteChoice(dir, Choice{Database: Embedded}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{LockFile, ChoiceFile} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if uid := st.Sys().(*syscall.Stat_t).Uid; uid != nobody {
			t.Errorf("%s belongs to uid %d, want the directory's owner %d", f, uid, nobody)
		}
	}
}
