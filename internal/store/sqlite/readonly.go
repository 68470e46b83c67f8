package sqlite

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"lobby/internal/store"
	"lobby/internal/store/sqlstore"
)

// OpenReadOnly opens an existing database file for reading only, without
// migrating it or creating anything: for `lobby health`, which must change
// nothing and reads a database of any schema version, beside a running
// node. Every write through it fails.
func OpenReadOnly(ctx context.Context, path string, logger *slog.Logger) (store.Store, error) {
	path, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open %q: %w", path, err)
	}
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("there is no database at %s: give the --data directory of a node that has started", path)
		}
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	r := openReader(path)
	if err := r.PingContext(ctx); err != nil {
		r.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	st, err := sqlstore.New(sqlstore.Config{Dialect: store.SQLite, Writer: r, Reader: r, Classify: classify, Logger: logger})
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return &readOnly{Store: st, close: r.Close}, nil
}

// readOnly is a store that closes its own connections.
type readOnly struct {
	*sqlstore.Store
	close func() error
}

func (r *readOnly) Close() error { return errors.Join(r.Store.Close(), r.close()) }
