package storecopy

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkCopy copies a standalone node's database of a busy year into
// PostgreSQL: 100 users, 5,000 desktops, 100,000 audit events and 20,000
// finished jobs. It reports rows copied per second.
func BenchmarkCopy(b *testing.B) {
	ctx := b.Context()
	path := newSQLite(b)
	src := openSQLite(b, path)
	tx, err := src.SQL.BeginTx(ctx, nil)
	must(b, err)
	now := time.Now().UnixMicro()
	exec := func(q string, args ...any) {
		b.Helper()
		_, err := tx.ExecContext(ctx, q, args...)
		must(b, err)
	}
	exec(`INSERT INTO hosts (id, name, provider, state, site_id, created) VALUES ('hst_1', 'host-1', 'local', 'up', 1, ?)`, now)
	exec(`INSERT INTO pools (id, name, min_size, max_size, min_free, name_pattern, template, created) VALUES ('pool_1', 'p', 0, 5000, 0, 'd-{n}', 't', ?)`, now)
	for i := range 100 {
		exec(`INSERT INTO users (id, username, password_hash, role, group_names, created) VALUES (?, ?, 'hash', 'user', '["staff"]', ?)`, fmt.Sprintf("usr_%d", i), fmt.Sprintf("user%d", i), now)
	}
	for i := range 5000 {
		exec(`INSERT INTO desktops (id, name, host_id, pool_id, power, console_kind, tags, created, updated) VALUES (?, ?, 'hst_1', 'pool_1', 'running', 'vnc', '["a"]', ?, ?)`,
			fmt.Sprintf("dsk_%d", i), fmt.Sprintf("d-%d", i), now, now)
	}
	for i := range 100000 {
		exec(`INSERT INTO audit (at, actor, action, target, detail, remote) VALUES (?, 'admin', 'desktop.power', ?, '{"op":"start"}', '10.0.0.1')`, now+int64(i), fmt.Sprintf("dsk_%d", i%5000))
	}
	for i := range 20000 {
		exec(`INSERT INTO river_job (args, attempt, attempted_at, attempted_by, created_at, finalized_at, kind, max_attempts, metadata, state, scheduled_at, tags)
			VALUES (jsonb(?), 1, '2026-03-04 05:06:07.123', jsonb('["site-1"]'), '2026-03-04 05:06:07', '2026-03-04 05:06:08', 'desktop.power', 5, jsonb('{"output":{"site_id":1}}'), 'completed', '2026-03-04 05:06:07', jsonb('[]'))`,
			fmt.Sprintf(`{"desktop_id":"dsk_%d","op":"start"}`, i%5000))
	}
	must(b, tx.Commit())
	info, err := Inspect(ctx, src)
	must(b, err)
	var rows int64
	for _, r := range info.Rows {
		rows += r.Rows
	}
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		pg := openPostgres(b, newPostgres(b))
		b.StartTimer()
		if _, err := Copy(ctx, src, pg, Options{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(rows), "rows")
}
