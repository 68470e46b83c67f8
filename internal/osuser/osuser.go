// Package osuser looks up operating-system users for the processes Lobby
// starts under other identities: desktops, test PostgreSQL servers, load
// generators. It exists so that one place parses uid and gid.
package osuser

import (
	"errors"
	"fmt"
	"os/user"
	"strconv"
	"syscall"
)

// Lookup returns the uid and gid of the user name. An unknown user's error
// wraps user.UnknownUserError.
func Lookup(name string) (uid, gid uint32, err error) {
	u, err := user.Lookup(name)
	if err != nil {
		return 0, 0, err
	}
	id, err1 := strconv.ParseUint(u.Uid, 10, 32)
	g, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return 0, 0, fmt.Errorf("user %s: %w", name, err)
	}
	return uint32(id), uint32(g), nil
}

// Credential returns the credential to start a process as the user name.
func Credential(name string) (*syscall.Credential, error) {
	uid, gid, err := Lookup(name)
	if err != nil {
		return nil, err
	}
	return &syscall.Credential{Uid: uid, Gid: gid}, nil
}
