package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"lobby/internal/lobby"
	"lobby/internal/store"
)

const userCols = `id, username, role, group_names, disabled, created`

func scanUser(sc scanner) (*lobby.User, error) {
	var u lobby.User
	err := sc.Scan(&u.ID, &u.Username, &u.Role, stringsCol(&u.Groups), &u.Disabled, timeCol{&u.Created})
	if err != nil {
		return nil, err
	}
	return &u, nil
}

// CreateUser inserts u, setting u.ID (when empty) and u.Created (when zero).
// ErrConflict when the username or ID is taken.
func (q *queries) CreateUser(ctx context.Context, u *lobby.User, passwordHash string) error {
	if u.ID == "" {
		u.ID = lobby.NewID("usr")
	}
	u.Created = q.createdTime(u.Created)
	if u.Groups == nil {
		u.Groups = []string{}
	}
	_, err := q.exec(ctx, `INSERT INTO users (`+userCols+`, password_hash) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		u.ID, u.Username, string(u.Role), jsonText(u.Groups), u.Disabled, q.d.t(u.Created), passwordHash)
	if err != nil {
		return q.d.wrap(err, fmt.Sprintf("create user %q", u.Username))
	}
	return nil
}

// createdTime returns t at stored precision, or now when t is zero.
func (q *queries) createdTime(t time.Time) time.Time {
	if t.IsZero() {
		return q.now()
	}
	return micro(t)
}

// GetUser returns the user with the ID; ErrNotFound.
func (q *queries) GetUser(ctx context.Context, id string) (*lobby.User, error) {
	return get(ctx, q, fmt.Sprintf("user %q", id), scanUser,
		`SELECT `+userCols+` FROM users WHERE id = ?`, id)
}

// GetUserByName returns the user and their password hash; ErrNotFound.
func (q *queries) GetUserByName(ctx context.Context, username string) (*lobby.User, string, error) {
	var hash string
	u, err := get(ctx, q, fmt.Sprintf("user %q", username), func(sc scanner) (*lobby.User, error) {
		var u lobby.User
		err := sc.Scan(&u.ID, &u.Username, &u.Role, stringsCol(&u.Groups), &u.Disabled, timeCol{&u.Created}, &hash)
		return &u, err
	}, `SELECT `+userCols+`, password_hash FROM users WHERE username = ?`, username)
	if err != nil {
		return nil, "", err
	}
	return u, hash, nil
}

// ListUsers pages users by ID.
func (q *queries) ListUsers(ctx context.Context, opt store.ListOptions) ([]lobby.User, error) {
	after, limit := page(opt)
	return listLimit(ctx, q, "users", scanUser,
		`SELECT `+userCols+` FROM users WHERE id > ? ORDER BY id`, limit, after)
}

// UpdateUser writes u's role, groups and disabled flag; ErrNotFound.
func (q *queries) UpdateUser(ctx context.Context, u *lobby.User) error {
	defer q.noteAuthChange()
	return q.execOne(ctx, fmt.Sprintf("update user %q", u.ID),
		`UPDATE users SET role = ?, group_names = ?, disabled = ? WHERE id = ?`,
		string(u.Role), jsonText(u.Groups), u.Disabled, u.ID)
}

// SetPassword replaces the user's password hash; ErrNotFound.
func (q *queries) SetPassword(ctx context.Context, userID, passwordHash string) error {
	defer q.noteAuthChange()
	return q.execOne(ctx, fmt.Sprintf("set password of user %q", userID),
		`UPDATE users SET password_hash = ? WHERE id = ?`, passwordHash, userID)
}

// DeleteUser deletes the user with their tokens, tickets and assignments,
// and frees the desktops they held (without powering them off: callers
// that apply a release plan do so first); ErrNotFound.
//
// The rows are locked in the order the other writers take them: the
// user's (as a connect does), their assignments', then by the cascade
// their desktops'. Left to the cascade alone, the desktops came before
// the assignments, the reverse of a release, and on PostgreSQL the two
// could deadlock (storetest's DeleteUserWhileReleased).
func (q *queries) DeleteUser(ctx context.Context, id string) error {
	defer q.noteAuthChange()
	what := fmt.Sprintf("delete user %q", id)
	return q.atomic(ctx, func(q *queries) error {
		if err := q.LockUser(ctx, id); errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("%s: %w", what, store.ErrNotFound)
		} else if err != nil {
			return err
		}
		if _, err := q.exec(ctx, `DELETE FROM assignments WHERE user_id = ?`, id); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return q.execOne(ctx, what, `DELETE FROM users WHERE id = ?`, id)
	})
}

// CountUsersWithRole counts the users holding role, disabled ones
// included.
func (q *queries) CountUsersWithRole(ctx context.Context, role lobby.Role) (int, error) {
	var n int
	err := q.readRow(ctx, `SELECT count(*) FROM users WHERE role = ?`, string(role)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count users with role %q: %w", role, err)
	}
	return n, nil
}

const lockUserSQL = `SELECT id FROM users WHERE id = ?`

// LockUser locks the user's row until the transaction ends (PostgreSQL);
// on SQLite the transaction already holds the only writer. ErrNotFound.
func (q *queries) LockUser(ctx context.Context, userID string) error {
	var id string
	err := q.writeScan(ctx, func(r *sql.Row) error { return r.Scan(&id) }, lockUserSQL+q.d.pick("", ` FOR UPDATE`), userID)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("lock user %q: %w", userID, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("lock user %q: %w", userID, err)
	}
	return nil
}
