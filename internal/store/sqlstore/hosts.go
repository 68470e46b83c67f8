package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"lobby/internal/lobby"
	"lobby/internal/store"
)

// hostBaseCols are the columns UpsertHost writes; hostLinkCols those of
// the host's link (migration 00009), which only the link methods write.
// (pending_serial, migration 00014, is read only by PromoteHostCert, so
// that pages of a node on an older schema still list hosts.)
const (
	hostBaseCols = `id, name, provider, state, site_id, last_seen, created`
	hostLinkCols = `cert_serial, revoked, agent_version, address, cpu_percent, mem_total, mem_used, desktops_running`
	hostCols     = hostBaseCols + `, ` + hostLinkCols
)

func scanHost(sc scanner) (*lobby.Host, error) {
	var h lobby.Host
	err := sc.Scan(&h.ID, &h.Name, &h.Provider, &h.State, &h.SiteID, timeCol{&h.LastSeen}, timeCol{&h.Created},
		&h.CertSerial, &h.Revoked, &h.AgentVersion, &h.Address, &h.CPUPercent, &h.MemTotal, &h.MemUsed, &h.Running)
	if err != nil {
		return nil, err
	}
	return &h, nil
}

// UpsertHost inserts h, or updates the host of that name (provider, state,
// site ID, last seen), and sets h.ID and h.Created to the stored ones. The
// link fields (certificate, revocation, report) are not written: a new
// host gets the defaults, an existing one keeps its own.
func (q *queries) UpsertHost(ctx context.Context, h *lobby.Host) error {
	id := h.ID
	if id == "" {
		id = lobby.NewID("hst")
	}
	h.LastSeen = micro(h.LastSeen)
	err := q.writeScan(ctx, func(r *sql.Row) error { return r.Scan(&h.ID, timeCol{&h.Created}) },
		`INSERT INTO hosts (`+hostBaseCols+`) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET provider = excluded.provider, state = excluded.state,
			site_id = excluded.site_id, last_seen = excluded.last_seen
		RETURNING id, created`,
		id, h.Name, h.Provider, string(h.State), h.SiteID, q.d.t(h.LastSeen), q.d.t(q.createdTime(h.Created)))
	if err != nil {
		return q.d.wrap(err, fmt.Sprintf("upsert host %q", h.Name))
	}
	return nil
}

// CreateHost inserts h with every field, setting h.ID (when empty) and
// h.Created (when zero); ErrConflict when the name or ID is taken.
func (q *queries) CreateHost(ctx context.Context, h *lobby.Host) error {
	if h.ID == "" {
		h.ID = lobby.NewID("hst")
	}
	h.Created = q.createdTime(h.Created)
	h.LastSeen = micro(h.LastSeen)
	_, err := q.exec(ctx, `INSERT INTO hosts (`+hostCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		h.ID, h.Name, h.Provider, string(h.State), h.SiteID, q.d.t(h.LastSeen), q.d.t(h.Created),
		h.CertSerial, h.Revoked, h.AgentVersion, h.Address, h.CPUPercent, h.MemTotal, h.MemUsed, h.Running)
	if err != nil {
		return q.d.wrap(err, fmt.Sprintf("create host %q", h.Name))
	}
	return nil
}

// GetHost returns the host with the ID; ErrNotFound.
func (q *queries) GetHost(ctx context.Context, id string) (*lobby.Host, error) {
	return get(ctx, q, fmt.Sprintf("host %q", id), scanHost, `SELECT `+hostCols+` FROM hosts WHERE id = ?`, id)
}

// GetHostByName returns the host with the name; ErrNotFound.
func (q *queries) GetHostByName(ctx context.Context, name string) (*lobby.Host, error) {
	return get(ctx, q, fmt.Sprintf("host %q", name), scanHost, `SELECT `+hostCols+` FROM hosts WHERE name = ?`, name)
}

// ListHosts pages hosts by ID.
func (q *queries) ListHosts(ctx context.Context, opt store.ListOptions) ([]lobby.Host, error) {
	after, limit := page(opt)
	return listLimit(ctx, q, "hosts", scanHost, `SELECT `+hostCols+` FROM hosts WHERE id > ? ORDER BY id`, limit, after)
}

// SetHostState records a host's link state, the site it is linked to and
// when it was last seen; ErrNotFound.
func (q *queries) SetHostState(ctx context.Context, id string, state lobby.HostState, siteID int, seen time.Time) error {
	return q.execOne(ctx, fmt.Sprintf("set state of host %q", id),
		`UPDATE hosts SET state = ?, site_id = ?, last_seen = ? WHERE id = ?`, string(state), siteID, q.d.t(seen), id)
}

// SetHostCert records the serial of the host's new link certificate and
// clears Revoked and any renewal; ErrNotFound.
func (q *queries) SetHostCert(ctx context.Context, id, serial string) error {
	return q.execOne(ctx, fmt.Sprintf("set certificate of host %q", id),
		`UPDATE hosts SET cert_serial = ?, pending_serial = '', revoked = FALSE WHERE id = ?`, serial, id)
}

// SetHostPendingCert records a renewed certificate of a host in good
// standing; ErrRevoked, ErrNotFound.
func (q *queries) SetHostPendingCert(ctx context.Context, id, serial string) error {
	what := fmt.Sprintf("renew certificate of host %q", id)
	res, err := q.exec(ctx, `UPDATE hosts SET pending_serial = ? WHERE id = ? AND NOT revoked`, serial, id)
	if err != nil {
		return q.d.wrap(err, what)
	}
	if n, err := res.RowsAffected(); err != nil || n == 1 {
		return err
	}
	if _, err := q.GetHost(ctx, id); err != nil {
		return err
	}
	return fmt.Errorf("%s: %w", what, store.ErrRevoked)
}

// PromoteHostCert makes the pending certificate with the serial the
// host's certificate; ErrNotFound when it is not pending (any more).
func (q *queries) PromoteHostCert(ctx context.Context, id, serial string) error {
	return q.execOne(ctx, fmt.Sprintf("use the renewed certificate %s of host %q", serial, id),
		`UPDATE hosts SET cert_serial = pending_serial, pending_serial = '' WHERE id = ? AND pending_serial = ? AND pending_serial <> '' AND NOT revoked`, id, serial)
}

// RevokeHost marks the host revoked and down, its renewal dropped;
// ErrNotFound.
func (q *queries) RevokeHost(ctx context.Context, id string) error {
	return q.execOne(ctx, fmt.Sprintf("revoke host %q", id),
		`UPDATE hosts SET revoked = TRUE, pending_serial = '', state = ? WHERE id = ?`, string(lobby.HostDown), id)
}

// SetHostReport records the report of a linked host: its state (down
// while it is revoked, whatever the report says), site, last seen, link
// address, agent version and metrics; ErrNotFound.
func (q *queries) SetHostReport(ctx context.Context, id string, r store.HostReport) error {
	what := fmt.Sprintf("set report of host %q", id)
	set := func(state lobby.HostState, cond string) (int64, error) {
		res, err := q.exec(ctx, `UPDATE hosts SET state = ?, site_id = ?, last_seen = ?,
			address = ?, agent_version = ?, cpu_percent = ?, mem_total = ?, mem_used = ?, desktops_running = ?
		WHERE id = ?`+cond,
			string(state), r.SiteID, q.d.t(r.Seen),
			r.Address, r.AgentVersion, r.CPUPercent, r.MemTotal, r.MemUsed, r.Running, id)
		if err != nil {
			return 0, q.d.wrap(err, what)
		}
		return res.RowsAffected()
	}
	// One statement for a host in good standing, the usual case; a
	// revoked host's report is recorded down, and said so.
	if n, err := set(r.State, " AND NOT revoked"); err != nil || n == 1 {
		return err
	}
	if n, err := set(lobby.HostDown, ""); err != nil {
		return err
	} else if n == 0 {
		return fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	return fmt.Errorf("%s: %w", what, store.ErrRevoked)
}

// SetHostDown marks the host down with its last seen time, only while
// the node of siteID holds its link.
func (q *queries) SetHostDown(ctx context.Context, id string, siteID int, seen time.Time) (bool, error) {
	what := fmt.Sprintf("set host %q down", id)
	res, err := q.exec(ctx, `UPDATE hosts SET state = ?, last_seen = ? WHERE id = ? AND site_id = ?`, string(lobby.HostDown), q.d.t(seen), id, siteID)
	if err != nil {
		return false, fmt.Errorf("%s: %w", what, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 1 {
		return n == 1, err
	}
	if _, err := q.GetHost(ctx, id); err != nil {
		return false, err
	}
	return false, nil
}

// DeleteHost deletes a host without desktops; ErrNotFound, or ErrConflict
// while desktops still refer to it.
func (q *queries) DeleteHost(ctx context.Context, id string) error {
	what := fmt.Sprintf("delete host %q", id)
	res, err := q.exec(ctx, `DELETE FROM hosts WHERE id = ?`, id)
	if err != nil {
		if q.d.classify(err) == ForeignKeyViolation {
			return fmt.Errorf("%s: desktops remain on it: %w", what, store.ErrConflict)
		}
		return fmt.Errorf("%s: %w", what, err)
	}
	return oneRow(res, what)
}
