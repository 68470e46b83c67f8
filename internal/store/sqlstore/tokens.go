package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"lobby/internal/lobby"
	"lobby/internal/store"
)

const tokenCols = `id, user_id, hash, name, created, expires, revoked`

func scanToken(sc scanner) (*store.Token, error) {
	var t store.Token
	err := sc.Scan(&t.ID, &t.UserID, &t.Hash, &t.Name, timeCol{&t.Created}, timeCol{&t.Expires}, &t.Revoked)
	if err != nil {
		return nil, err
	}
	return &t, nil
}

// CreateToken inserts t, setting t.ID (when empty) and t.Created (when
// zero). A zero Expires never expires. ErrConflict when the hash is taken,
// ErrNotFound when the user is unknown.
func (q *queries) CreateToken(ctx context.Context, t *store.Token) error {
	if t.ID == "" {
		t.ID = lobby.NewID("tok")
	}
	t.Created = q.createdTime(t.Created)
	t.Expires = micro(t.Expires)
	_, err := q.exec(ctx, `INSERT INTO tokens (`+tokenCols+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		t.ID, t.UserID, t.Hash, t.Name, q.d.t(t.Created), q.d.t(t.Expires), t.Revoked)
	if err != nil {
		return q.d.wrapRef(err, fmt.Sprintf("create token %q", t.Name), fmt.Sprintf("user %q", t.UserID))
	}
	return nil
}

// GetToken returns the token with the hash, revoked or expired ones
// included: the caller checks Revoked and Expires. ErrNotFound.
func (q *queries) GetToken(ctx context.Context, hash string) (*store.Token, error) {
	return get(ctx, q, "token", scanToken, `SELECT `+tokenCols+` FROM tokens WHERE hash = ?`, hash)
}

// RevokeToken marks the token revoked; ErrNotFound.
func (q *queries) RevokeToken(ctx context.Context, id string) error {
	defer q.noteAuthChange()
	return q.execOne(ctx, fmt.Sprintf("revoke token %q", id), `UPDATE tokens SET revoked = TRUE WHERE id = ?`, id)
}

// RevokeUserTokens revokes every token of the user (none is not an error).
func (q *queries) RevokeUserTokens(ctx context.Context, userID string) error {
	defer q.noteAuthChange()
	_, err := q.exec(ctx, `UPDATE tokens SET revoked = TRUE WHERE user_id = ? AND NOT revoked`, userID)
	if err != nil {
		return fmt.Errorf("revoke tokens of user %q: %w", userID, err)
	}
	return nil
}

// DeleteExpiredTokens deletes the tokens that expired at or before now and
// returns how many.
func (q *queries) DeleteExpiredTokens(ctx context.Context, now time.Time) (int, error) {
	res, err := q.exec(ctx, `DELETE FROM tokens WHERE expires <= ?`, q.d.t(now))
	if err != nil {
		return 0, fmt.Errorf("delete expired tokens: %w", err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}

const ticketCols = `hash, user_id, desktop_id, created, expires`

func scanTicket(sc scanner) (*store.Ticket, error) {
	var t store.Ticket
	if err := sc.Scan(&t.Hash, &t.UserID, &t.DesktopID, timeCol{&t.Created}, timeCol{&t.Expires}); err != nil {
		return nil, err
	}
	return &t, nil
}

// CreateTicket inserts t, setting t.Created when zero. ErrConflict when the
// hash is taken, ErrNotFound when the user or desktop is unknown.
func (q *queries) CreateTicket(ctx context.Context, t *store.Ticket) error {
	t.Created = q.createdTime(t.Created)
	t.Expires = micro(t.Expires)
	_, err := q.exec(ctx, createTicketSQL,
		t.Hash, t.UserID, t.DesktopID, q.d.t(t.Created), q.d.t(t.Expires))
	if err != nil {
		return q.d.wrapRef(err, "create ticket", fmt.Sprintf("user %q or desktop %q", t.UserID, t.DesktopID))
	}
	return nil
}

const createTicketSQL = `INSERT INTO tickets (` + ticketCols + `) VALUES (?, ?, ?, ?, ?)`

// RedeemTicket marks an unused ticket that has not expired at now as used
// and returns it, in one statement; ErrNotFound when it is unknown, used or
// expired.
func (q *queries) RedeemTicket(ctx context.Context, hash string, now time.Time) (*store.Ticket, error) {
	var t *store.Ticket
	err := q.writeScan(ctx, func(r *sql.Row) (err error) { t, err = scanTicket(r); return err },
		`UPDATE tickets SET used = TRUE, used_at = ? WHERE hash = ? AND NOT used AND expires > ? RETURNING `+ticketCols,
		q.d.t(now), hash, q.d.t(now))
	if err != nil {
		return nil, noRows(err, "redeem ticket")
	}
	return t, nil
}

// DeleteExpiredTickets deletes the tickets, used or not, that expired at or
// before now and returns how many.
func (q *queries) DeleteExpiredTickets(ctx context.Context, now time.Time) (int, error) {
	res, err := q.exec(ctx, `DELETE FROM tickets WHERE expires <= ?`, q.d.t(now))
	if err != nil {
		return 0, fmt.Errorf("delete expired tickets: %w", err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}
