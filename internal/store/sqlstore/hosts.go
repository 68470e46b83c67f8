package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"lobby/internal/lobby"
	"lobby/internal/store"
)

const hostCols = `id, name, provider, state, site_id, last_seen, created`

func scanHost(sc scanner) (*lobby.Host, error) {
	var h lobby.Host
	err := sc.Scan(&h.ID, &h.Name, &h.Provider, &h.State, &h.SiteID, timeCol{&h.LastSeen}, timeCol{&h.Created})
	if err != nil {
		return nil, err
	}
	return &h, nil
}

// UpsertHost inserts h, or updates the host of that name (provider, state,
// site ID, last seen), and sets h.ID and h.Created to the stored ones.
func (q *queries) UpsertHost(ctx context.Context, h *lobby.Host) error {
	id := h.ID
	if id == "" {
		id = lobby.NewID("hst")
	}
	h.LastSeen = micro(h.LastSeen)
	err := q.writeScan(ctx, func(r *sql.Row) error { return r.Scan(&h.ID, timeCol{&h.Created}) },
		`INSERT INTO hosts (`+hostCols+`) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET provider = excluded.provider, state = excluded.state,
			site_id = excluded.site_id, last_seen = excluded.last_seen
		RETURNING id, created`,
		id, h.Name, h.Provider, string(h.State), h.SiteID, q.d.t(h.LastSeen), q.d.t(q.createdTime(h.Created)))
	if err != nil {
		return q.d.wrap(err, fmt.Sprintf("upsert host %q", h.Name))
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
