package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"lobby/internal/lobby"
	"lobby/internal/store"
)

const poolCols = `id, name, min_size, max_size, min_free, name_pattern, template, created`

func scanPool(sc scanner) (*lobby.Pool, error) {
	var p lobby.Pool
	err := sc.Scan(&p.ID, &p.Name, &p.MinSize, &p.MaxSize, &p.MinFree, &p.NamePattern, &p.Template, timeCol{&p.Created})
	if err != nil {
		return nil, err
	}
	return &p, nil
}

// CreatePool inserts p, setting p.ID (when empty) and p.Created (when
// zero); ErrConflict when the name is taken.
func (q *queries) CreatePool(ctx context.Context, p *lobby.Pool) error {
	if p.ID == "" {
		p.ID = lobby.NewID("pool")
	}
	p.Created = q.createdTime(p.Created)
	_, err := q.exec(ctx, `INSERT INTO pools (`+poolCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		p.ID, p.Name, p.MinSize, p.MaxSize, p.MinFree, p.NamePattern, p.Template, q.d.t(p.Created))
	if err != nil {
		return q.d.wrap(err, fmt.Sprintf("create pool %q", p.Name))
	}
	return nil
}

// GetPool returns the pool with the ID; ErrNotFound.
func (q *queries) GetPool(ctx context.Context, id string) (*lobby.Pool, error) {
	return get(ctx, q, fmt.Sprintf("pool %q", id), scanPool, `SELECT `+poolCols+` FROM pools WHERE id = ?`, id)
}

// GetPoolByName returns the pool with the name; ErrNotFound.
func (q *queries) GetPoolByName(ctx context.Context, name string) (*lobby.Pool, error) {
	return get(ctx, q, fmt.Sprintf("pool %q", name), scanPool, `SELECT `+poolCols+` FROM pools WHERE name = ?`, name)
}

// ListPools pages pools by ID.
func (q *queries) ListPools(ctx context.Context, opt store.ListOptions) ([]lobby.Pool, error) {
	after, limit := page(opt)
	return listLimit(ctx, q, "pools", scanPool, `SELECT `+poolCols+` FROM pools WHERE id > ? ORDER BY id`, limit, after)
}

// UpdatePool writes every field of p but ID and Created; ErrNotFound, or
// ErrConflict when the new name is taken.
func (q *queries) UpdatePool(ctx context.Context, p *lobby.Pool) error {
	return q.execOne(ctx, fmt.Sprintf("update pool %q", p.ID),
		`UPDATE pools SET name = ?, min_size = ?, max_size = ?, min_free = ?, name_pattern = ?, template = ? WHERE id = ?`,
		p.Name, p.MinSize, p.MaxSize, p.MinFree, p.NamePattern, p.Template, p.ID)
}

// DeletePool deletes an empty pool; ErrNotFound, or ErrConflict while
// desktops (or assignments) still refer to it.
//
// Desktops are looked for first, without locking anything. The foreign
// key check of the DELETE alone would lock the pool's row and then wait
// for a desktop of it that AssignFree holds, while AssignFree, holding
// that desktop, waits for the pool's row (its own foreign key check): on
// PostgreSQL the two deadlocked (storetest's DeletePoolWhileAssigning).
// The check still guards what this one misses, a desktop added meanwhile.
func (q *queries) DeletePool(ctx context.Context, id string) error {
	what := fmt.Sprintf("delete pool %q", id)
	var one int
	err := q.readRow(ctx, `SELECT 1 FROM desktops WHERE pool_id = ? LIMIT 1`, id).Scan(&one)
	if err == nil {
		return fmt.Errorf("%s: desktops remain in it: %w", what, store.ErrConflict)
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s: %w", what, err)
	}
	res, err := q.exec(ctx, `DELETE FROM pools WHERE id = ?`, id)
	if err != nil {
		if q.d.classify(err) == ForeignKeyViolation {
			return fmt.Errorf("%s: desktops remain in it: %w", what, store.ErrConflict)
		}
		return fmt.Errorf("%s: %w", what, err)
	}
	return oneRow(res, what)
}
