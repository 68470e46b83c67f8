package local

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os/exec"
	"os/user"
	"strings"
	"time"

	"lobby/internal/osuser"
)

// desktopUser derives the per-desktop system user name: "lobby-", up to 16
// characters of the desktop name ('.' and '_' made '-'), '-', and 8 hex
// digits of a hash of the state directory and the name. It is at most 31
// characters (the limit is 32), the same for the same desktop on every
// run, and differs between desktops of the same name under two state
// directories (two agents, or parallel tests, on one machine).
func desktopUser(stateDir, name string) string {
	sum := sha256.Sum256([]byte(stateDir + "\x00" + name))
	short := strings.NewReplacer(".", "-", "_", "-").Replace(name)
	if len(short) > 16 {
		short = short[:16]
	}
	return "lobby-" + strings.TrimRight(short, "-") + "-" + hex.EncodeToString(sum[:4])
}

// lookupUser returns the uid and gid of an existing user.
func lookupUser(name string) (uid, gid uint32, err error) {
	return osuser.Lookup(name)
}

// createUser creates the system user name with home as its home directory
// (not created here), or reuses it when an interrupted Create left it: the
// name embeds a hash of this state directory, so no one else owns it.
func createUser(ctx context.Context, name, home, desktop string) (uid, gid uint32, err error) {
	if uid, gid, err := lookupUser(name); err == nil {
		return uid, gid, nil
	}
	if _, err := exec.LookPath("useradd"); err != nil {
		return 0, 0, fmt.Errorf("create desktop user: useradd not found (install the passwd package) or set RunAsUser: %w", err)
	}
	err = retryLocked(ctx, "useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
		"--home-dir", home, "--comment", "Lobby desktop "+desktop, name)
	if err != nil {
		return 0, 0, fmt.Errorf("create desktop user %s: %w", name, err)
	}
	return lookupUser(name)
}

// deleteUser removes a user created by createUser; a missing user is
// fine.
func deleteUser(ctx context.Context, name string) error {
	if _, err := user.Lookup(name); err != nil {
		return nil
	}
	if err := retryLocked(ctx, "userdel", name); err != nil {
		if _, lerr := user.Lookup(name); lerr != nil {
			return nil // gone after all
		}
		return fmt.Errorf("delete desktop user %s: %w", name, err)
	}
	return nil
}

// lockedFor bounds how long retryLocked waits for the lock: each holder
// keeps it a fraction of a second, but a host creating and deleting many
// desktops at once queues many of them.
const lockedFor = 30 * time.Second

// retryLocked runs a shadow-utils command, retrying while another one holds
// the lock on /etc/passwd or /etc/group (parallel agents or tests).
func retryLocked(ctx context.Context, name string, args ...string) error {
	delay := 20 * time.Millisecond
	deadline := time.Now().Add(lockedFor)
	for {
		// No context: killing useradd midway could leave /etc/passwd locked.
		out, err := exec.Command(name, args...).CombinedOutput()
		if err == nil {
			return nil
		}
		msg := strings.TrimSpace(string(out))
		if !strings.Contains(msg, "lock") || time.Now().After(deadline) {
			return fmt.Errorf("%s: %v: %s", name, err, msg)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, 500*time.Millisecond)
	}
}
