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
// and records a (setting a.ID when empty, a.DesktopID, and a.Created when
// zero), atomically: on PostgreSQL in one statement, on SQLite in a
// transaction (the single writer serializes them). ErrExhausted when the
// pool has no free desktop, ErrNotFound when the pool, user or policy is
// unknown.
//
// On PostgreSQL concurrent calls skip each other's locked rows (FOR UPDATE
// SKIP LOCKED). A free desktop can also be locked by another writer (a
// power report): when the fast statement finds nothing, a second one waits
// for those locks and rechecks, so ErrExhausted never hides a free
// desktop. Inside a transaction, that second statement runs in a new
// transaction (see queries.rerun), so InTx runs its fn again.
func (q *queries) AssignFree(ctx context.Context, a *lobby.Assignment) (*lobby.Desktop, error) {
	if a.ID == "" {
		a.ID = lobby.NewID("asg")
	}
	a.DisconnectedAt = microPtr(a.DisconnectedAt)
	now := q.createdAt(a)
	var d *lobby.Desktop
	take := func(q *queries) error {
		var err error
		if q.waitLocked {
			d, err = scanDesktop(q.writeRow(ctx, assignFreePostgresWait, q.assignFreeArgs(a, now)...))
		} else {
			d, err = scanDesktop(q.writeRow(ctx, q.d.assignFreeSQL(), q.assignFreeArgs(a, now)...))
		}
		if errors.Is(err, sql.ErrNoRows) && q.d.postgres() && !q.waitLocked {
			if q.rerun != nil { // in a transaction: see queries.rerun
				*q.rerun = true
				return errRerun
			}
			d, err = scanDesktop(q.writeRow(ctx, assignFreePostgresWait, q.assignFreeArgs(a, now)...))
		}
		if errors.Is(err, sql.ErrNoRows) {
			return q.exhausted(ctx, a.PoolID)
		}
		if err != nil {
			return q.d.wrapRef(err, fmt.Sprintf("assign a desktop of pool %q", a.PoolID),
				fmt.Sprintf("user %q or policy %q", a.UserID, a.PolicyID))
		}
		a.DesktopID = d.ID
		if q.d.postgres() { // the statement inserted a
			return nil
		}
		return q.insertAssignment(ctx, a, now)
	}
	var err error
	if q.d.postgres() {
		err = take(q) // each statement is atomic by itself
	} else {
		err = q.atomic(ctx, take)
	}
	if err != nil {
		return nil, err
	}
	a.Created = now
	return d, nil
}

// assignFreeSQL takes the first free running desktop of a pool by ID, and
// on PostgreSQL also inserts the assignment, in one round trip. The
// literal conditions and the order match the partial index desktops_free
// (pool_id, id), so the search is one index probe however large the pool.
// Without ORDER BY id, PostgreSQL estimates that a sequential scan finds a
// row for LIMIT 1 sooner, and throughput drops several times under load;
// without statistics, SQLite prefers the full index desktops_pool_id,
// hence INDEXED BY there. On PostgreSQL, SKIP LOCKED lets concurrent calls
// pass each other's claimed rows instead of queueing behind them; the pick
// rechecks the newest version of the row it locks, so the UPDATE needs no
// condition of its own.
func (d *dialect) assignFreeSQL() string {
	if d.postgres() {
		return assignFreePostgres
	}
	return assignFreeSQLite
}

const assignFreeSQLite = `UPDATE desktops SET assigned_to = ?, updated = ?
	WHERE id = (SELECT id FROM desktops INDEXED BY desktops_free
		WHERE pool_id = ? AND assigned_to IS NULL AND power = 'running' ORDER BY id LIMIT 1)
	RETURNING ` + desktopCols

// assignFreePostgres picks, assigns and records in one statement. The pick
// is a CTE of its own, joined by the UPDATE: an UPDATE inside a CTE with
// the pick as a scalar subquery (WHERE id = (SELECT ...)) loses rows under
// READ COMMITTED, because the recheck of a concurrently updated row does
// not see the subquery's value: about 1 call in 1,000 then reported
// ErrExhausted with free desktops left under 32 concurrent callers
// (storetest's AssignFreeChurn; measured on PostgreSQL 15).
var assignFreePostgres = assignFreePostgresLocking("FOR UPDATE SKIP LOCKED")

// assignFreePostgresWait is assignFreePostgres waiting for locked rows.
var assignFreePostgresWait = assignFreePostgresLocking("FOR UPDATE")

func assignFreePostgresLocking(locking string) string {
	return `WITH pick AS (
		SELECT id FROM desktops
		WHERE pool_id = $3 AND assigned_to IS NULL AND power = 'running'
		ORDER BY id LIMIT 1 ` + locking + `
	), d AS (
		UPDATE desktops SET assigned_to = $1, updated = $2 FROM pick WHERE desktops.id = pick.id
		RETURNING ` + qualify("desktops", desktopCols) + `
	), a AS (
		INSERT INTO assignments (` + assignmentCols + `)
		SELECT $4, d.id, $1, $3, $5, $6, $7, $8, $2 FROM d
	)
	SELECT ` + desktopCols + ` FROM d`
}

// errRerun ends a transaction that InTx runs again (see queries.rerun).
var errRerun = errors.New("sqlstore: transaction to run again, waiting for locked desktops")

// qualify prefixes each column of a comma-separated list with table.
func qualify(table, cols string) string {
	parts := strings.Split(cols, ", ")
	for i, c := range parts {
		parts[i] = table + "." + c
	}
	return strings.Join(parts, ", ")
}

// assignFreeArgs are the arguments of assignFreeSQL.
func (q *queries) assignFreeArgs(a *lobby.Assignment, now time.Time) []any {
	args := []any{a.UserID, q.d.t(now), a.PoolID}
	if q.d.postgres() {
		args = append(args, a.ID, nullStr(a.PolicyID), string(a.Mode), a.Connected, q.d.tPtr(a.DisconnectedAt))
	}
	return args
}

// AssignFreeSQL returns the statement AssignFree runs, for EXPLAIN.
func (s *Store) AssignFreeSQL() string { return s.d.assignFreeSQL() }

// ExplainAssignFree returns the database's plan for AssignFree in the
// pool (EXPLAIN QUERY PLAN on SQLite; on PostgreSQL the custom plan for
// this pool and the generic plan a prepared statement may settle on).
// Nothing is executed.
func (s *Store) ExplainAssignFree(ctx context.Context, poolID string) (string, error) {
	a := &lobby.Assignment{ID: "asg_explain", UserID: "usr_explain", PoolID: poolID}
	args := s.assignFreeArgs(a, s.now())
	if !s.d.postgres() {
		return explain(ctx, s.cfg.Writer, "EXPLAIN QUERY PLAN "+s.d.assignFreeSQL(), args...)
	}
	custom, err := explain(ctx, s.cfg.Writer, "EXPLAIN "+s.d.assignFreeSQL(), args...)
	if err != nil {
		return "", err
	}
	generic, err := explainGeneric(ctx, s.cfg.Writer, s.d.assignFreeSQL(), poolID)
	if err != nil {
		return "", err
	}
	return "custom plan:\n" + custom + "\n\ngeneric plan:\n" + generic, nil
}

// explain runs an EXPLAIN and returns its last column, one line per row.
func explain(ctx context.Context, db interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, query string, args ...any) (string, error) {
	rows, err := db.QueryContext(ctx, query, args...)
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

// explainGeneric returns PostgreSQL's generic plan of the AssignFree
// statement, on a connection of its own whose session state it restores.
func explainGeneric(ctx context.Context, db *sql.DB, stmt, poolID string) (string, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	defer conn.ExecContext(context.WithoutCancel(ctx), "DEALLOCATE lobby_assign_free; RESET plan_cache_mode")
	if _, err := conn.ExecContext(ctx, "SET plan_cache_mode = force_generic_plan"); err != nil {
		return "", err
	}
	if _, err := conn.ExecContext(ctx, "PREPARE lobby_assign_free AS "+stmt); err != nil {
		return "", err
	}
	quoted := "'" + strings.ReplaceAll(poolID, "'", "''") + "'"
	return explain(ctx, conn, "EXPLAIN EXECUTE lobby_assign_free('usr_explain', now(), "+quoted+", 'asg_explain', NULL, '', FALSE, NULL)")
}

// exhausted tells an empty pool (ErrExhausted) from an unknown one
// (ErrNotFound).
func (q *queries) exhausted(ctx context.Context, poolID string) error {
	var one int
	err := q.readRow(ctx, poolExistsSQL, poolID).Scan(&one)
	if err != nil {
		return noRows(err, fmt.Sprintf("assign a desktop of pool %q", poolID))
	}
	return fmt.Errorf("pool %q: %w", poolID, store.ErrExhausted)
}

const (
	poolExistsSQL       = `SELECT 1 FROM pools WHERE id = ?`
	insertAssignmentSQL = `INSERT INTO assignments (` + assignmentCols + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`
	assignDesktopSQL    = `UPDATE desktops SET assigned_to = ?, updated = ? WHERE id = ? AND assigned_to IS NULL RETURNING pool_id`
	deleteAssignmentSQL = `DELETE FROM assignments WHERE id = ? RETURNING desktop_id, user_id`
	releaseDesktopSQL   = `UPDATE desktops SET assigned_to = NULL, updated = ? WHERE id = ? AND assigned_to = ?`
)

// hotSQLite lists the statements SQLite prepares when the store opens, so
// that the transactions of the hot paths (connect: LockUser,
// ListAssignments, AssignFree, AppendAudit, CreateTicket; release:
// DeleteAssignment, AppendAudit; the savepoints of grouped transactions)
// run prepared statements: a transaction holds the only writer
// connection, on which nothing can be prepared.
func hotSQLite() []string {
	return []string{savepointSQL, releaseSQL, rollbackSQL,
		assignFreeSQLite, poolExistsSQL, insertAssignmentSQL, assignDesktopSQL,
		deleteAssignmentSQL, releaseDesktopSQL, lockUserSQL, appendAuditSQL, createTicketSQL,
		getDesktopSQL, getAssignmentSQL, setConnectedSQL, setDisconnectedSQL,
		listAssignmentsSQL(store.AssignmentFilter{UserID: "-"}),
		listAssignmentsSQL(store.AssignmentFilter{DesktopID: "-"})}
}

func (q *queries) insertAssignment(ctx context.Context, a *lobby.Assignment, created time.Time) error {
	_, err := q.exec(ctx, insertAssignmentSQL,
		a.ID, a.DesktopID, a.UserID, nullStr(a.PoolID), nullStr(a.PolicyID), string(a.Mode), a.Connected,
		q.d.tPtr(a.DisconnectedAt), q.d.t(created))
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
	if a.ID == "" {
		a.ID = lobby.NewID("asg")
	}
	a.DisconnectedAt = microPtr(a.DisconnectedAt)
	now := q.createdAt(a)
	err := q.atomic(ctx, func(q *queries) error {
		what := fmt.Sprintf("assign desktop %q", a.DesktopID)
		var poolID string
		err := q.writeRow(ctx, assignDesktopSQL, a.UserID, q.d.t(now), a.DesktopID).Scan(strCol{&poolID})
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
		return q.insertAssignment(ctx, a, now)
	})
	if err != nil {
		return err
	}
	a.Created = now
	return nil
}

// GetAssignment returns the assignment with the ID; ErrNotFound.
func (q *queries) GetAssignment(ctx context.Context, id string) (*lobby.Assignment, error) {
	return get(ctx, q, fmt.Sprintf("assignment %q", id), scanAssignment, getAssignmentSQL, id)
}

const getAssignmentSQL = `SELECT ` + assignmentCols + ` FROM assignments WHERE id = ?`

// ExistingAssignments returns the IDs among ids that name an assignment.
// The IDs travel as one JSON array, not one placeholder each: SQLite
// limits the number of variables of a statement, and the text stays the
// same whatever the count, so it is prepared once.
func (q *queries) ExistingAssignments(ctx context.Context, ids []string) (map[string]bool, error) {
	if len(ids) == 0 {
		return map[string]bool{}, nil
	}
	existing, err := list(ctx, q, "existing assignments", scanID, q.d.pick(existingAssignmentsSQLite, existingAssignmentsPostgres), jsonText(ids))
	if err != nil {
		return nil, err
	}
	found := make(map[string]bool, len(existing))
	for _, id := range existing {
		found[id] = true
	}
	return found, nil
}

// scanID reads a row of one ID.
func scanID(s scanner) (*string, error) {
	var id string
	return &id, s.Scan(&id)
}

const (
	existingAssignmentsSQLite   = `SELECT id FROM assignments WHERE id IN (SELECT value FROM json_each(?))`
	existingAssignmentsPostgres = `SELECT id FROM assignments WHERE id IN (SELECT jsonb_array_elements_text(?::text::jsonb))`
)

// ListAssignments returns every assignment matching f, by ID.
func (q *queries) ListAssignments(ctx context.Context, f store.AssignmentFilter) ([]lobby.Assignment, error) {
	return list(ctx, q, "assignments", scanAssignment, listAssignmentsSQL(f), assignmentArgs(f)...)
}

// listAssignmentsSQL is the query of ListAssignments for the fields f sets
// (their values are the arguments, assignmentArgs).
func listAssignmentsSQL(f store.AssignmentFilter) string {
	where := []string{"TRUE"}
	for _, c := range assignmentConds(f) {
		if c.val != "" {
			where = append(where, c.col+" = ?")
		}
	}
	if f.Disconnected {
		where = append(where, "disconnected_at IS NOT NULL")
	}
	return `SELECT ` + assignmentCols + ` FROM assignments WHERE ` + strings.Join(where, " AND ") + ` ORDER BY id`
}

func assignmentArgs(f store.AssignmentFilter) []any {
	var args []any
	for _, c := range assignmentConds(f) {
		if c.val != "" {
			args = append(args, c.val)
		}
	}
	return args
}

func assignmentConds(f store.AssignmentFilter) [4]struct{ col, val string } {
	return [4]struct{ col, val string }{{"user_id", f.UserID}, {"desktop_id", f.DesktopID}, {"pool_id", f.PoolID}, {"policy_id", f.PolicyID}}
}

// SetConnected records a session connecting (clearing DisconnectedAt) or
// disconnecting at the given time; ErrNotFound.
func (q *queries) SetConnected(ctx context.Context, assignmentID string, connected bool, at time.Time) error {
	what := fmt.Sprintf("set connected of assignment %q", assignmentID)
	if connected {
		return q.execOne(ctx, what, setConnectedSQL, assignmentID)
	}
	return q.execOne(ctx, what, setDisconnectedSQL, q.d.t(at), assignmentID)
}

const (
	setConnectedSQL    = `UPDATE assignments SET connected = TRUE, disconnected_at = NULL WHERE id = ?`
	setDisconnectedSQL = `UPDATE assignments SET connected = FALSE, disconnected_at = ? WHERE id = ?`
)

// DeleteAssignment deletes the assignment and frees its desktop,
// atomically (one statement on PostgreSQL); ErrNotFound.
func (q *queries) DeleteAssignment(ctx context.Context, id string) error {
	what := fmt.Sprintf("delete assignment %q", id)
	now := q.d.t(q.now())
	if q.d.postgres() {
		var n int
		err := q.writeRow(ctx, `WITH a AS (
				DELETE FROM assignments WHERE id = $1 RETURNING desktop_id, user_id
			), d AS (
				UPDATE desktops SET assigned_to = NULL, updated = $2
				FROM a WHERE desktops.id = a.desktop_id AND desktops.assigned_to = a.user_id
			)
			SELECT count(*) FROM a`, id, now).Scan(&n)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if n == 0 {
			return fmt.Errorf("%s: %w", what, store.ErrNotFound)
		}
		return nil
	}
	return q.atomic(ctx, func(q *queries) error {
		var desktopID, userID string
		err := q.writeRow(ctx, deleteAssignmentSQL, id).Scan(&desktopID, &userID)
		if err != nil {
			return noRows(err, what)
		}
		_, err = q.exec(ctx, releaseDesktopSQL, now, desktopID, userID)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	})
}

// createdAt is the assignment's creation time: the caller's (whose clock
// may be injected, as release plans are tested) or the store's now.
func (q *queries) createdAt(a *lobby.Assignment) time.Time {
	if !a.Created.IsZero() {
		return micro(a.Created)
	}
	return q.now()
}
