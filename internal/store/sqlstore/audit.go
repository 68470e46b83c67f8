package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"lobby/internal/lobby"
	"lobby/internal/store"
)

const auditCols = `id, at, actor, action, target, detail, remote`

func scanAudit(sc scanner) (*lobby.AuditEvent, error) {
	var e lobby.AuditEvent
	if err := sc.Scan(&e.ID, timeCol{&e.At}, &e.Actor, &e.Action, &e.Target, &e.Detail, &e.Remote); err != nil {
		return nil, err
	}
	return &e, nil
}

// AppendAudit appends e to the audit log, setting e.ID and e.At (when
// zero).
func (q *queries) AppendAudit(ctx context.Context, e *lobby.AuditEvent) error {
	e.At = q.createdTime(e.At)
	err := q.writeScan(ctx, func(r *sql.Row) error { return r.Scan(&e.ID) },
		appendAuditSQL, q.d.t(e.At), e.Actor, e.Action, e.Target, e.Detail, e.Remote)
	if err != nil {
		return fmt.Errorf("append audit event %q: %w", e.Action, err)
	}
	return nil
}

const appendAuditSQL = `INSERT INTO audit (at, actor, action, target, detail, remote) VALUES (?, ?, ?, ?, ?, ?) RETURNING id`

// ListAudit returns the events matching f, newest first. f.Query matches a
// case-insensitive substring of actor, action, target or detail (ASCII
// letters only on SQLite).
func (q *queries) ListAudit(ctx context.Context, f store.AuditFilter) ([]lobby.AuditEvent, error) {
	where, args := []string{"TRUE"}, []any{}
	if f.Before > 0 {
		where = append(where, "id < ?")
		args = append(args, f.Before)
	}
	if !f.Since.IsZero() {
		where = append(where, "at >= ?")
		args = append(args, q.d.t(f.Since))
	}
	if f.Query != "" {
		like := q.d.pick("LIKE", "ILIKE")
		var ors []string
		for _, col := range []string{"actor", "action", "target", "detail"} {
			ors = append(ors, col+" "+like+` ? ESCAPE '\'`)
			args = append(args, likePattern(f.Query))
		}
		where = append(where, "("+strings.Join(ors, " OR ")+")")
	}
	return listLimit(ctx, q, "audit events", scanAudit,
		`SELECT `+auditCols+` FROM audit WHERE `+strings.Join(where, " AND ")+` ORDER BY id DESC`, clampLimit(f.Limit), args...)
}

// GetSetting returns the value of the setting; ErrNotFound.
func (q *queries) GetSetting(ctx context.Context, key string) (string, error) {
	var v string
	err := q.readRow(ctx, `SELECT value FROM settings WHERE name = ?`, key).Scan(&v)
	if err != nil {
		return "", noRows(err, fmt.Sprintf("setting %q", key))
	}
	return v, nil
}

// SetSetting sets the value of the setting, creating it if needed.
func (q *queries) SetSetting(ctx context.Context, key, value string) error {
	_, err := q.exec(ctx, `INSERT INTO settings (name, value) VALUES (?, ?)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value`, key, value)
	if err != nil {
		return fmt.Errorf("set setting %q: %w", key, err)
	}
	return nil
}
