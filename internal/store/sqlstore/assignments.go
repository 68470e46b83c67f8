package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"lobby/internal/lobby"
	"lobby/internal/store"
)

const assignmentCols = `id, desktop_id, user_id, pool_id, policy_id, mode, connected, disconnected_at, created`

func scanAssignment(sc scanner) (*lobby.Assignment, error) {
	var a lobby.Assignment
	err := sc.Scan(&a.ID, &a.DesktopID, &a.UserID, strCol{&a.PoolID}, strCol{&a.PolicyID}, &a.Mode, &a.Connected,
		timePtrCol{&a.DisconnectedAt}, timeCol{&a.Created})
	if err != nil {
		return nil, err
	}
	return &a, nil
}

// AssignFree takes a running, unassigned desktop of a.PoolID for a.UserID
// and records a (setting a.ID when empty, a.DesktopID and a.Created), in
// one transaction: the caller's, or its own. On PostgreSQL concurrent calls
// skip each other's locked rows (FOR UPDATE SKIP LOCKED); on SQLite the
// single writer serializes them. ErrExhausted when the pool has no free
// desktop, ErrNotFound when the pool, user or policy is unknown.
func (q *queries) AssignFree(ctx context.Context, a *lobby.Assignment) (*lobby.Desktop, error) {
	var d *lobby.Desktop
	err := q.atomic(ctx, func(q *queries) error {
		now := q.now()
		var err error
		d, err = scanDesktop(q.w.QueryRowContext(ctx, q.d.assignFreeSQL(), a.UserID, q.d.t(now), a.PoolID))
		if errors.Is(err, sql.ErrNoRows) {
			return q.exhausted(ctx, a.PoolID)
		}
		if err != nil {
			return q.d.wrapRef(err, fmt.Sprintf("assign a desktop of pool %q", a.PoolID), fmt.Sprintf("user %q", a.UserID))
		}
		a.DesktopID = d.ID
		a.Created = now
		return q.insertAssignment(ctx, a)
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// assignFreeSQL takes a free running desktop of a pool. The literal
// conditions match the partial index desktops_free, so that the search is
// one index probe however large the pool; on PostgreSQL, SKIP LOCKED lets
// concurrent calls pass each other's claimed rows instead of queueing.
func (d *dialect) assignFreeSQL() string {
	return d.bind(`UPDATE desktops SET assigned_to = ?, updated = ?
		WHERE id = (SELECT id FROM desktops WHERE pool_id = ? AND assigned_to IS NULL AND power = 'running'
			LIMIT 1` + d.pick("", ` FOR UPDATE SKIP LOCKED`) + `)
		AND assigned_to IS NULL
		RETURNING ` + desktopCols)
}

// ExplainAssignFree returns the database's plan for AssignFree in the
// pool, one line per plan node (EXPLAIN QUERY PLAN on SQLite, EXPLAIN on
// PostgreSQL); nothing is executed.
func (s *Store) ExplainAssignFree(ctx context.Context, poolID string) (string, error) {
	explain := s.d.pick("EXPLAIN QUERY PLAN ", "EXPLAIN ")
	rows, err := s.cfg.Writer.QueryContext(ctx, explain+s.d.assignFreeSQL(), "usr_x", s.d.t(s.d.now()), poolID)
	if err != nil {
		return "", fmt.Errorf("explain: %w", err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return "", err
	}
	var lines []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return "", err
		}
		lines = append(lines, fmt.Sprint(vals[len(vals)-1])) // SQLite: the detail column; PostgreSQL: the only one
	}
	return strings.Join(lines, "\n"), rows.Err()
}

// exhausted tells an empty pool (ErrExhausted) from an unknown one
// (ErrNotFound).
func (q *queries) exhausted(ctx context.Context, poolID string) error {
	var one int
	err := q.r.QueryRowContext(ctx, q.d.bind(`SELECT 1 FROM pools WHERE id = ?`), poolID).Scan(&one)
	if err != nil {
		return noRows(err, fmt.Sprintf("assign a desktop of pool %q", poolID))
	}
	return fmt.Errorf("pool %q: %w", poolID, store.ErrExhausted)
}

func (q *queries) insertAssignment(ctx context.Context, a *lobby.Assignment) error {
	if a.ID == "" {
		a.ID = lobby.NewID("asg")
	}
	if a.DisconnectedAt != nil {
		t := micro(*a.DisconnectedAt)
		a.DisconnectedAt = &t
	}
	var disconnected any
	if a.DisconnectedAt != nil {
		disconnected = q.d.t(*a.DisconnectedAt)
	}
	_, err := q.exec(ctx, `INSERT INTO assignments (`+assignmentCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		a.ID, a.DesktopID, a.UserID, nullStr(a.PoolID), nullStr(a.PolicyID), string(a.Mode), a.Connected,
		disconnected, q.d.t(a.Created))
	if err != nil {
		return q.d.wrapRef(err, fmt.Sprintf("assign desktop %q", a.DesktopID), fmt.Sprintf("pool %q or policy %q", a.PoolID, a.PolicyID))
	}
	return nil
}

// AssignDesktop assigns the unassigned desktop a.DesktopID to a.UserID and
// records a (setting a.ID when empty, a.Created, and a.PoolID from the
// desktop when empty). ErrConflict when the desktop is assigned,
// ErrNotFound when it, the user or the policy is unknown.
func (q *queries) AssignDesktop(ctx context.Context, a *lobby.Assignment) error {
	return q.atomic(ctx, func(q *queries) error {
		now := q.now()
		what := fmt.Sprintf("assign desktop %q", a.DesktopID)
		var poolID string
		err := q.w.QueryRowContext(ctx, q.d.bind(`UPDATE desktops SET assigned_to = ?, updated = ?
			WHERE id = ? AND assigned_to IS NULL RETURNING pool_id`), a.UserID, q.d.t(now), a.DesktopID).Scan(strCol{&poolID})
		if errors.Is(err, sql.ErrNoRows) {
			if _, err := q.GetDesktop(ctx, a.DesktopID); err != nil {
				return err
			}
			return fmt.Errorf("%s: it is assigned: %w", what, store.ErrConflict)
		}
		if err != nil {
			return q.d.wrapRef(err, what, fmt.Sprintf("user %q", a.UserID))
		}
		if a.PoolID == "" {
			a.PoolID = poolID
		}
		a.Created = now
		return q.insertAssignment(ctx, a)
	})
}

// GetAssignment returns the assignment with the ID; ErrNotFound.
func (q *queries) GetAssignment(ctx context.Context, id string) (*lobby.Assignment, error) {
	return get(ctx, q, fmt.Sprintf("assignment %q", id), scanAssignment,
		`SELECT `+assignmentCols+` FROM assignments WHERE id = ?`, id)
}

// ListAssignments returns every assignment matching f, by ID.
func (q *queries) ListAssignments(ctx context.Context, f store.AssignmentFilter) ([]lobby.Assignment, error) {
	where, args := []string{"TRUE"}, []any{}
	for _, c := range []struct {
		col, val string
	}{{"user_id", f.UserID}, {"desktop_id", f.DesktopID}, {"pool_id", f.PoolID}, {"policy_id", f.PolicyID}} {
		if c.val != "" {
			where = append(where, c.col+" = ?")
			args = append(args, c.val)
		}
	}
	if f.Disconnected {
		where = append(where, "disconnected_at IS NOT NULL")
	}
	return list(ctx, q, "assignments", scanAssignment,
		`SELECT `+assignmentCols+` FROM assignments WHERE `+strings.Join(where, " AND ")+` ORDER BY id`, args...)
}

// SetConnected records a session connecting (clearing DisconnectedAt) or
// disconnecting at the given time; ErrNotFound.
func (q *queries) SetConnected(ctx context.Context, assignmentID string, connected bool, at time.Time) error {
	what := fmt.Sprintf("set connected of assignment %q", assignmentID)
	if connected {
		return q.execOne(ctx, what, `UPDATE assignments SET connected = TRUE, disconnected_at = NULL WHERE id = ?`, assignmentID)
	}
	return q.execOne(ctx, what, `UPDATE assignments SET connected = FALSE, disconnected_at = ? WHERE id = ?`,
		q.d.t(at), assignmentID)
}

// DeleteAssignment deletes the assignment and frees its desktop, in one
// transaction; ErrNotFound.
func (q *queries) DeleteAssignment(ctx context.Context, id string) error {
	return q.atomic(ctx, func(q *queries) error {
		what := fmt.Sprintf("delete assignment %q", id)
		var desktopID, userID string
		err := q.w.QueryRowContext(ctx, q.d.bind(`DELETE FROM assignments WHERE id = ? RETURNING desktop_id, user_id`), id).
			Scan(&desktopID, &userID)
		if err != nil {
			return noRows(err, what)
		}
		_, err = q.exec(ctx, `UPDATE desktops SET assigned_to = NULL, updated = ? WHERE id = ? AND assigned_to = ?`,
			q.d.t(q.now()), desktopID, userID)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	})
}
