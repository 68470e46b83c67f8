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

const nodeCols = `site_id, name, address, version, schema_version, mode, started, heartbeat`

func scanNode(sc scanner) (*lobby.Node, error) {
	var n lobby.Node
	err := sc.Scan(&n.SiteID, &n.Name, &n.Address, &n.Version, &n.SchemaVersion, &n.Mode, timeCol{&n.Started}, timeCol{&n.Heartbeat}, &n.Instance)
	if err != nil {
		return nil, err
	}
	return &n, nil
}

// RegisterNode inserts or takes over the row of n.SiteID (see
// store.Queries); the upsert's WHERE makes the check and the write one
// statement, so two processes racing for a site ID cannot both win.
func (q *queries) RegisterNode(ctx context.Context, n *lobby.Node, instance string, staleBefore time.Time) error {
	n.Started, n.Heartbeat = micro(n.Started), micro(n.Heartbeat)
	if n.Mode == "" {
		n.Mode = lobby.NodeNormal
	}
	res, err := q.exec(ctx, `INSERT INTO nodes (instance, `+nodeCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (site_id) DO UPDATE SET instance = excluded.instance, name = excluded.name,
			address = excluded.address, version = excluded.version, schema_version = excluded.schema_version,
			mode = excluded.mode, started = excluded.started, heartbeat = excluded.heartbeat
		WHERE nodes.instance = excluded.instance OR nodes.heartbeat < ?`,
		instance, n.SiteID, n.Name, n.Address, n.Version, n.SchemaVersion, string(n.Mode), q.d.t(n.Started), q.d.t(n.Heartbeat), q.d.t(staleBefore))
	if err != nil {
		return q.d.wrap(err, fmt.Sprintf("register node of site ID %d", n.SiteID))
	}
	if k, err := res.RowsAffected(); err != nil {
		return err
	} else if k == 0 {
		return fmt.Errorf("register node of site ID %d: held by a live node: %w", n.SiteID, store.ErrConflict)
	}
	return nil
}

// Heartbeat records that the instance holding the site ID is alive and
// returns the mode its row asks for.
func (q *queries) Heartbeat(ctx context.Context, siteID int, instance string, now time.Time) (lobby.NodeMode, error) {
	var mode lobby.NodeMode
	err := q.writeScan(ctx, func(r *sql.Row) error { return r.Scan(&mode) },
		`UPDATE nodes SET heartbeat = ? WHERE site_id = ? AND instance = ? RETURNING mode`, q.d.t(micro(now)), siteID, instance)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("heartbeat of site ID %d: the row is no longer this process's: %w", siteID, store.ErrConflict)
	}
	if err != nil {
		return "", fmt.Errorf("heartbeat of site ID %d: %w", siteID, err)
	}
	return mode, nil
}

// GetNode returns the node of a site ID; ErrNotFound.
func (q *queries) GetNode(ctx context.Context, siteID int) (*lobby.Node, error) {
	return get(ctx, q, fmt.Sprintf("node of site ID %d", siteID), scanNode, `SELECT `+nodeCols+`, instance FROM nodes WHERE site_id = ?`, siteID)
}

// ListNodes lists every node by site ID (a cluster has few).
func (q *queries) ListNodes(ctx context.Context) ([]lobby.Node, error) {
	return list(ctx, q, "nodes", scanNode, `SELECT `+nodeCols+`, instance FROM nodes ORDER BY site_id`)
}

// SetNodeMode sets a node's mode (an operator drains it); ErrNotFound.
func (q *queries) SetNodeMode(ctx context.Context, siteID int, mode lobby.NodeMode) error {
	return q.execOne(ctx, fmt.Sprintf("set mode of node %d", siteID), `UPDATE nodes SET mode = ? WHERE site_id = ?`, string(mode), siteID)
}

// DeleteNode removes a node's row (an operator removes a dead node);
// ErrNotFound.
func (q *queries) DeleteNode(ctx context.Context, siteID int) error {
	return q.execOne(ctx, fmt.Sprintf("remove node %d", siteID), `DELETE FROM nodes WHERE site_id = ?`, siteID)
}

const leaseCols = `name, holder, instance, term, expires`

func scanLease(sc scanner) (*store.Lease, error) {
	var l store.Lease
	if err := sc.Scan(&l.Name, &l.Holder, &l.Instance, &l.Term, timeCol{&l.Expires}); err != nil {
		return nil, err
	}
	return &l, nil
}

// AcquireLease takes, renews or fails to take a lease in one statement.
func (q *queries) AcquireLease(ctx context.Context, name string, holder int, instance string, now time.Time, ttl time.Duration) (store.Lease, bool, error) {
	now = micro(now)
	var l store.Lease
	err := q.writeScan(ctx, func(r *sql.Row) error {
		got, err := scanLease(r)
		if err == nil {
			l = *got
		}
		return err
	}, `INSERT INTO leases (`+leaseCols+`) VALUES (?, ?, ?, 1, ?)
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, instance = excluded.instance,
			term = CASE WHEN leases.instance = excluded.instance THEN leases.term ELSE leases.term + 1 END,
			expires = excluded.expires
		WHERE leases.instance = excluded.instance OR leases.expires <= ?
		RETURNING `+leaseCols,
		name, holder, instance, q.d.t(now.Add(ttl)), q.d.t(now))
	if errors.Is(err, sql.ErrNoRows) {
		cur, err := get(ctx, q, fmt.Sprintf("lease %q", name), scanLease, `SELECT `+leaseCols+` FROM leases WHERE name = ?`, name)
		if err != nil {
			return store.Lease{}, false, err
		}
		return *cur, false, nil
	}
	if err != nil {
		return store.Lease{}, false, fmt.Errorf("acquire lease %q: %w", name, err)
	}
	return l, true, nil
}

// ReleaseLease ends the lease now if instance holds it, so that another
// node takes over without waiting for it to expire.
func (q *queries) ReleaseLease(ctx context.Context, name, instance string) error {
	_, err := q.exec(ctx, `UPDATE leases SET expires = ? WHERE name = ? AND instance = ?`, q.d.t(time.Unix(0, 1)), name, instance)
	if err != nil {
		return fmt.Errorf("release lease %q: %w", name, err)
	}
	return nil
}

// GetLease returns a lease's holder; ErrNotFound when never taken.
func (q *queries) GetLease(ctx context.Context, name string) (*store.Lease, error) {
	return get(ctx, q, fmt.Sprintf("lease %q", name), scanLease, `SELECT `+leaseCols+` FROM leases WHERE name = ?`, name)
}
