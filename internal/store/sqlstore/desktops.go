package sqlstore

import (
	"context"
	"fmt"
	"strings"

	"lobby/internal/lobby"
	"lobby/internal/store"
)

const desktopCols = `id, name, host_id, pool_id, power, console_kind, console_port, assigned_to, tags, created, updated`

func scanDesktop(sc scanner) (*lobby.Desktop, error) {
	var d lobby.Desktop
	err := sc.Scan(&d.ID, &d.Name, &d.HostID, strCol{&d.PoolID}, &d.Power, &d.ConsoleKind, &d.ConsolePort,
		strCol{&d.AssignedTo}, stringsCol(&d.Tags), timeCol{&d.Created}, timeCol{&d.Updated})
	if err != nil {
		return nil, err
	}
	return &d, nil
}

// CreateDesktop inserts d, setting d.ID (when empty), d.Created (when zero)
// and d.Updated. d.AssignedTo must be empty: only AssignFree and
// AssignDesktop assign desktops. ErrConflict when the name is taken on the
// host, ErrNotFound when the host or pool is unknown.
func (q *queries) CreateDesktop(ctx context.Context, d *lobby.Desktop) error {
	if d.AssignedTo != "" {
		return lobby.Errorf(lobby.KindInvalid, "desktop %q: a new desktop cannot be assigned: assign it with AssignDesktop", d.Name)
	}
	if d.ID == "" {
		d.ID = lobby.NewID("dsk")
	}
	d.Created = q.createdTime(d.Created)
	d.Updated = d.Created
	if d.Tags == nil {
		d.Tags = []string{}
	}
	_, err := q.exec(ctx, `INSERT INTO desktops (`+desktopCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?)`,
		d.ID, d.Name, d.HostID, nullStr(d.PoolID), string(d.Power), d.ConsoleKind, d.ConsolePort,
		jsonText(d.Tags), q.d.t(d.Created), q.d.t(d.Updated))
	if err != nil {
		return q.d.wrapRef(err, fmt.Sprintf("create desktop %q", d.Name), fmt.Sprintf("host %q or pool %q", d.HostID, d.PoolID))
	}
	return nil
}

// GetDesktop returns the desktop with the ID; ErrNotFound.
func (q *queries) GetDesktop(ctx context.Context, id string) (*lobby.Desktop, error) {
	return get(ctx, q, fmt.Sprintf("desktop %q", id), scanDesktop, getDesktopSQL, id)
}

const getDesktopSQL = `SELECT ` + desktopCols + ` FROM desktops WHERE id = ?`

// GetDesktopByName returns the desktop of the host with the name;
// ErrNotFound.
func (q *queries) GetDesktopByName(ctx context.Context, hostID, name string) (*lobby.Desktop, error) {
	return get(ctx, q, fmt.Sprintf("desktop %q on host %q", name, hostID), scanDesktop,
		`SELECT `+desktopCols+` FROM desktops WHERE host_id = ? AND name = ?`, hostID, name)
}

// ListDesktops pages the desktops matching f by ID.
func (q *queries) ListDesktops(ctx context.Context, f store.DesktopFilter, opt store.ListOptions) ([]lobby.Desktop, error) {
	after, limit := page(opt)
	where, args := []string{"id > ?"}, []any{after}
	for _, c := range []struct {
		col, val string
	}{{"pool_id", f.PoolID}, {"host_id", f.HostID}, {"assigned_to", f.AssignedTo}, {"power", string(f.Power)}} {
		if c.val != "" {
			where = append(where, c.col+" = ?")
			args = append(args, c.val)
		}
	}
	return listLimit(ctx, q, "desktops", scanDesktop,
		`SELECT `+desktopCols+` FROM desktops WHERE `+strings.Join(where, " AND ")+` ORDER BY id`, limit, args...)
}

// UpdateDesktop writes every mutable field of d except AssignedTo, which
// only the assignment methods change (so that a stale copy never frees or
// takes a desktop), and sets d.Updated. ErrNotFound for an unknown desktop,
// host or pool; ErrConflict when the name is taken on the host.
func (q *queries) UpdateDesktop(ctx context.Context, d *lobby.Desktop) error {
	d.Updated = q.now()
	if d.Tags == nil {
		d.Tags = []string{}
	}
	res, err := q.exec(ctx, `UPDATE desktops SET name = ?, host_id = ?, pool_id = ?, power = ?, console_kind = ?,
		console_port = ?, tags = ?, updated = ? WHERE id = ?`,
		d.Name, d.HostID, nullStr(d.PoolID), string(d.Power), d.ConsoleKind, d.ConsolePort, jsonText(d.Tags), q.d.t(d.Updated), d.ID)
	what := fmt.Sprintf("update desktop %q", d.ID)
	if err != nil {
		return q.d.wrapRef(err, what, fmt.Sprintf("host %q or pool %q", d.HostID, d.PoolID))
	}
	return oneRow(res, what)
}

// SetDesktopPower records the power state and console port of a desktop
// and sets its Updated time; ErrNotFound.
func (q *queries) SetDesktopPower(ctx context.Context, id string, power lobby.PowerState, consolePort int) error {
	return q.execOne(ctx, fmt.Sprintf("set power of desktop %q", id),
		`UPDATE desktops SET power = ?, console_port = ?, updated = ? WHERE id = ?`, string(power), consolePort, q.d.t(q.now()), id)
}

// DeleteDesktop deletes the desktop with its assignment and tickets;
// ErrNotFound. The assignment goes first, in a statement of its own:
// a release locks the assignment and then the desktop, and the cascade
// from the desktop took them the other way round, so on PostgreSQL the
// two could deadlock (storetest's DeleteDesktopWhileReleased).
func (q *queries) DeleteDesktop(ctx context.Context, id string) error {
	what := fmt.Sprintf("delete desktop %q", id)
	return q.atomic(ctx, func(q *queries) error {
		if _, err := q.exec(ctx, `DELETE FROM assignments WHERE desktop_id = ?`, id); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return q.execOne(ctx, what, `DELETE FROM desktops WHERE id = ?`, id)
	})
}

// PoolCounts counts a pool's desktops by state; ErrNotFound for an unknown
// pool.
func (q *queries) PoolCounts(ctx context.Context, poolID string) (store.PoolCounts, error) {
	var c store.PoolCounts
	err := q.readRow(ctx, `SELECT count(d.id),
			coalesce(sum(CASE WHEN d.power = 'running' AND d.assigned_to IS NULL THEN 1 ELSE 0 END), 0),
			coalesce(sum(CASE WHEN d.assigned_to IS NOT NULL THEN 1 ELSE 0 END), 0),
			coalesce(sum(CASE WHEN d.power IN ('creating', 'starting') THEN 1 ELSE 0 END), 0),
			coalesce(sum(CASE WHEN d.assigned_to IS NULL AND d.power IN ('running', 'creating', 'starting') THEN 1 ELSE 0 END), 0),
			coalesce(sum(CASE WHEN d.assigned_to IS NULL AND d.power IN ('stopped', 'suspended') THEN 1 ELSE 0 END), 0)
		FROM pools p LEFT JOIN desktops d ON d.pool_id = p.id WHERE p.id = ? GROUP BY p.id`, poolID).
		Scan(&c.Total, &c.Free, &c.Assigned, &c.Pending, &c.Ready, &c.Idle)
	if err != nil {
		return store.PoolCounts{}, noRows(err, fmt.Sprintf("count desktops of pool %q", poolID))
	}
	return c, nil
}
