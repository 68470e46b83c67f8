package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"lobby/internal/store"
	"lobby/internal/store/sqlstore"
)

// OpenReadOnly connects to the database at url without migrating it, in
// read-only transactions: for `lobby health`, which must change nothing
// and reads a database of any schema version. Every write through it
// fails.
func OpenReadOnly(ctx context.Context, url string, logger *slog.Logger) (store.Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("database URL: %w", err)
	}
	cfg.MaxConns = 4
	cfg.ConnConfig.RuntimeParams["default_transaction_read_only"] = "on"
	pool, _, err := connect(ctx, cfg)
	if err != nil {
		return nil, err
	}
	sqldb := stdlib.OpenDBFromPool(pool)
	st, err := sqlstore.New(sqlstore.Config{Dialect: store.Postgres, Writer: sqldb, Classify: classify, Logger: logger})
	if err != nil {
		sqldb.Close()
		pool.Close()
		return nil, err
	}
	return &readOnly{Store: st, close: func() error { err := sqldb.Close(); pool.Close(); return err }}, nil
}

// readOnly is a store that closes its own connections.
type readOnly struct {
	*sqlstore.Store
	close func() error
}

func (r *readOnly) Close() error { return errors.Join(r.Store.Close(), r.close()) }

// DescribeURL names the database of url without its password, for
// messages; the URL itself when it cannot be parsed.
func DescribeURL(url string) string {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return "the PostgreSQL database given"
	}
	return Describe(cfg.ConnConfig.Config)
}
