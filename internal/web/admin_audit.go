package web

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"lobby/internal/lobby"
	"lobby/internal/store"
)

type auditData struct {
	Events []lobby.AuditEvent
	Query  string
	// Paged is set when Before is; Older pages on.
	Paged bool
	Older url.Values
}

const auditPerPage = 50

// auditPage lists the audit log newest first, searched by a substring of
// actor, action, target or detail, paged backwards by event ID.
func (s *Server) auditPage(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f := store.AuditFilter{Query: strings.TrimSpace(q.Get("q")), Limit: auditPerPage + 1}
	if b := q.Get("before"); b != "" {
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n <= 0 {
			return lobby.Errorf(lobby.KindInvalid, "before %q is not an audit event number", b)
		}
		f.Before = n
	}
	events, err := s.Store.ListAudit(r.Context(), f)
	if err != nil {
		return err
	}
	d := auditData{Query: f.Query, Paged: f.Before > 0}
	if len(events) > auditPerPage {
		events = events[:auditPerPage]
		d.Older = url.Values{"before": {strconv.FormatInt(events[len(events)-1].ID, 10)}}
		if f.Query != "" {
			d.Older.Set("q", f.Query)
		}
	}
	d.Events = events
	return s.render(w, r, http.StatusOK, "admin_audit", "Audit log", d)
}
