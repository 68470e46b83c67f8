package web

import (
	"net/http"

	"lobby/internal/lobby"
)

// adminHealthRoutes are the cluster health page and its report download.
func (s *Server) adminHealthRoutes(mux *http.ServeMux) {
	mux.Handle("GET /admin/health", s.page(lobby.PermRead, s.healthPage))
	mux.Handle("GET /admin/health/report", s.page(lobby.PermRead, s.healthReport))
}

// healthPage runs the cluster's health check from this node and shows it.
func (s *Server) healthPage(w http.ResponseWriter, r *http.Request) error {
	rep, err := s.Manage.Health(r.Context(), s.actor(r))
	if err != nil {
		return err
	}
	return s.render(w, r, http.StatusOK, "admin_health", "Cluster health", rep)
}

// healthReport runs the check and answers the report as an HTML file to
// keep or send: one page with its style inline, which needs this node no
// more.
func (s *Server) healthReport(w http.ResponseWriter, r *http.Request) error {
	rep, err := s.Manage.Health(r.Context(), s.actor(r))
	if err != nil {
		return err
	}
	return rep.Download(w)
}
