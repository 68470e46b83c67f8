package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"lobby/internal/lobby"
	"lobby/internal/store"
)

const joinTokenCols = `id, hash, note, created_by, created, expires, max_uses, uses, revoked`

func scanJoinToken(sc scanner) (*store.JoinToken, error) {
	var t store.JoinToken
	err := sc.Scan(&t.ID, &t.Hash, &t.Note, &t.CreatedBy, timeCol{&t.Created}, timeCol{&t.Expires}, &t.MaxUses, &t.Uses, &t.Revoked)
	if err != nil {
		return nil, err
	}
	return &t, nil
}

// CreateJoinToken inserts t, setting t.ID (when empty) and t.Created (when
// zero). t.Expires is required. ErrConflict when the ID or hash is taken.
func (q *queries) CreateJoinToken(ctx context.Context, t *store.JoinToken) error {
	if t.Expires.IsZero() {
		return lobby.Errorf(lobby.KindInvalid, "join token: an expiry is required")
	}
	if t.ID == "" {
		t.ID = lobby.NewID("jtk")
	}
	t.Created = q.createdTime(t.Created)
	t.Expires = micro(t.Expires)
	_, err := q.exec(ctx, `INSERT INTO join_tokens (`+joinTokenCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		t.ID, t.Hash, t.Note, t.CreatedBy, q.d.t(t.Created), q.d.t(t.Expires), t.MaxUses, t.Uses, t.Revoked)
	if err != nil {
		return q.d.wrap(err, fmt.Sprintf("create join token %q", t.ID))
	}
	return nil
}

// GetJoinToken returns the join token with the ID, used up, expired or
// revoked ones included; ErrNotFound.
func (q *queries) GetJoinToken(ctx context.Context, id string) (*store.JoinToken, error) {
	return get(ctx, q, fmt.Sprintf("join token %q", id), scanJoinToken,
		`SELECT `+joinTokenCols+` FROM join_tokens WHERE id = ?`, id)
}

// ListJoinTokens pages join tokens by ID.
func (q *queries) ListJoinTokens(ctx context.Context, opt store.ListOptions) ([]store.JoinToken, error) {
	after, limit := page(opt)
	return listLimit(ctx, q, "join tokens", scanJoinToken,
		`SELECT `+joinTokenCols+` FROM join_tokens WHERE id > ? ORDER BY id`, limit, after)
}

// UseJoinToken counts one use of the token, in one statement, when it is
// not revoked, has not expired at now and has uses left. ErrNotFound when
// it is unknown; ErrConflict when it cannot be used (GetJoinToken tells
// why). Of concurrent uses of a token's last use, one succeeds.
func (q *queries) UseJoinToken(ctx context.Context, id string, now time.Time) error {
	what := fmt.Sprintf("use join token %q", id)
	err := q.execOne(ctx, what,
		`UPDATE join_tokens SET uses = uses + 1 WHERE id = ? AND NOT revoked AND expires > ? AND uses < max_uses`,
		id, q.d.t(now))
	if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	_, gerr := q.GetJoinToken(ctx, id)
	switch {
	case errors.Is(gerr, store.ErrNotFound):
		return err
	case gerr != nil:
		return fmt.Errorf("%s: %w", what, gerr)
	}
	return fmt.Errorf("%s: revoked, expired or used up: %w", what, store.ErrConflict)
}

// RevokeJoinToken marks the join token revoked; ErrNotFound.
func (q *queries) RevokeJoinToken(ctx context.Context, id string) error {
	return q.execOne(ctx, fmt.Sprintf("revoke join token %q", id), `UPDATE join_tokens SET revoked = TRUE WHERE id = ?`, id)
}
