package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"time"
)

// CheckpointInterval is how often the checkpointer copies the WAL into the
// database file.
const CheckpointInterval = 100 * time.Millisecond

// checkpointer copies the write-ahead log into the database file from a
// connection of its own, so that no writer does it. SQLite's automatic
// checkpoint runs inside the COMMIT that crosses 1,000 WAL pages, with
// two fsyncs, while the one writer (and every transaction waiting for it)
// waits: under load that is several milliseconds every tenth of a second.
// The writer's automatic checkpoint is off (wal_autocheckpoint(0)); this
// runs PASSIVE checkpoints, which take no lock a writer or reader needs.
// SQLite restarts the log from its start once it is fully copied, so the
// WAL stays about one interval of writes long.
type checkpointer struct {
	db     *sql.DB
	logger *slog.Logger
	stop   context.CancelFunc
	done   chan struct{}
}

func startCheckpointer(ctx context.Context, path string, logger *slog.Logger) (*checkpointer, error) {
	db, err := sql.Open("sqlite", dsn(path))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	bg, stop := context.WithCancel(context.Background())
	c := &checkpointer{db: db, logger: logger, stop: stop, done: make(chan struct{})}
	go c.run(bg)
	return c, nil
}

func (c *checkpointer) run(ctx context.Context) {
	defer close(c.done)
	t := time.NewTicker(CheckpointInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var busy, logPages, copied int
		err := c.db.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &logPages, &copied)
		if err != nil && ctx.Err() == nil {
			c.logger.Warn("sqlite checkpoint", "err", err)
		}
	}
}

// close stops the checkpointer; closing the last connection of the
// database then checkpoints what is left.
func (c *checkpointer) close() error {
	c.stop()
	<-c.done
	return c.db.Close()
}
