package web

import (
	"html/template"
	"net/http"
)

// adminMoreRoutes are the rest of the admin console: desktops, hosts,
// policies, users, roles, jobs, audit and settings.
func (s *Server) adminMoreRoutes(mux *http.ServeMux) {}

// adminMoreFuncs are template functions those pages add.
func adminMoreFuncs() template.FuncMap { return template.FuncMap{} }
