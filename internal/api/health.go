package api

import (
	"net/http"

	"lobby/internal/health"
	"lobby/internal/lobby"
)

// clusterHealth answers the cluster's health check run from this node:
// JSON, or with ?format=html the report as an HTML file to download.
// The report's own status says whether the cluster is healthy; the HTTP
// status only whether the check ran.
func (s *Server) clusterHealth(w http.ResponseWriter, r *http.Request) error {
	format := r.URL.Query().Get("format")
	if format != "" && format != "json" && format != "html" {
		return lobby.FieldErrorf("format", "format %q is not valid: use json (the default) or html", format)
	}
	rep, err := s.manager().Health(r.Context(), actor(r))
	if err != nil {
		return err
	}
	if format == "html" {
		return rep.Download(w)
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "application/json")
	return rep.WriteJSON(w)
}

// pingHandler answers the other nodes' probes (and lobby health's).
func (s *Server) pingHandler() http.Handler {
	ping := s.Ping
	if ping == nil {
		ping = func() health.Ping { return health.Ping{Version: s.Version} }
	}
	return health.PingHandler(ping)
}
