// Package manage holds the administrative operations on pools, policies,
// users, desktops, hosts and join tokens, so the REST API and the web
// console run the same code: the same validation, the same role check, the
// same audit event.
package manage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"lobby/internal/assign"
	"lobby/internal/auth"
	"lobby/internal/health"
	"lobby/internal/jobs"
	"lobby/internal/lobby"
	"lobby/internal/store"
)

// Actor is who asks, and from where (for the audit log).
type Actor struct {
	User   *lobby.User
	Remote string
}

// Service performs administrative changes.
type Service struct {
	Store  store.Store
	Hasher *auth.Hasher
	Assign *assign.Service
	Queue  *jobs.Queue
	Now    func() time.Time
	// CAFingerprint is the SHA-256 of the cluster CA's certificate, carried
	// by every join token; zero refuses to issue tokens.
	CAFingerprint [32]byte
	// Hub is this node's links (a *link.Hub); nil when it has none.
	Hub Linker
	// Checker is the cluster's health check run from this node; nil
	// when it has none.
	Checker *health.Checker
}

// Allow checks that the actor's role holds perm; it is the one role check
// shared by the API and the web console.
func Allow(a Actor, perm lobby.Permission) error {
	if a.User == nil {
		return lobby.Errorf(lobby.KindUnauthorized, "sign in first")
	}
	if !a.User.Role.Can(perm) {
		return lobby.Errorf(lobby.KindForbidden, "your role %q does not allow this (it needs %q)", a.User.Role, perm)
	}
	return nil
}

func (s *Service) now() time.Time {
	if s.Now == nil {
		return time.Now()
	}
	return s.Now()
}

func (s *Service) audit(ctx context.Context, q store.Queries, a Actor, action, target, detail string) error {
	return q.AppendAudit(ctx, &lobby.AuditEvent{At: s.now(), Actor: a.User.Username, Action: action, Target: target, Detail: detail, Remote: a.Remote})
}

func (s *Service) kick(poolID string) {
	if s.Assign != nil && s.Assign.Kick != nil {
		s.Assign.Kick(poolID)
	}
}

// StoreErr turns store sentinels into user-facing errors about what.
func StoreErr(err error, what string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrNotFound):
		return lobby.Errorf(lobby.KindNotFound, "%s does not exist", what)
	case errors.Is(err, store.ErrConflict):
		return lobby.Errorf(lobby.KindConflict, "%s conflicts with an existing one (the name is taken, or it is in use)", what)
	}
	var le *lobby.Error
	if errors.As(err, &le) {
		return err
	}
	return fmt.Errorf("%s: %w", what, err)
}

// nameTaken reports a unique-name conflict against the form's name field.
func nameTaken(err error, what string) error {
	if errors.Is(err, store.ErrConflict) {
		return &lobby.Error{Kind: lobby.KindConflict, Field: "name", Message: fmt.Sprintf("%s already exists: choose another name", what)}
	}
	return StoreErr(err, what)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
