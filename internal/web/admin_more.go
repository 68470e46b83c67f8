package web

import (
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"lobby/internal/lobby"
)

// adminMoreRoutes are the rest of the admin console: desktops, hosts,
// policies, users, roles, jobs, audit and settings. Each page needs the
// permission its API twin needs; manage checks again on every change.
func (s *Server) adminMoreRoutes(mux *http.ServeMux) {
	mux.Handle("GET /admin/desktops", s.page(lobby.PermRead, s.desktopsPage))
	mux.Handle("GET /admin/desktops/{id}", s.page(lobby.PermRead, s.desktopPageAdmin))
	mux.Handle("GET /admin/desktops/{id}/live", s.page(lobby.PermRead, s.desktopLive))
	mux.Handle("POST /admin/desktops/{id}/action", s.page(lobby.PermOperate, s.desktopAction))
	mux.Handle("POST /admin/desktops/{id}/assign", s.page(lobby.PermOperate, s.desktopAssign))
	mux.Handle("POST /admin/desktops/{id}/unassign", s.page(lobby.PermOperate, s.desktopUnassign))

	mux.Handle("GET /admin/hosts", s.page(lobby.PermRead, s.hostsPage))
	mux.Handle("GET /admin/hosts/{id}", s.page(lobby.PermRead, s.hostPage))

	mux.Handle("GET /admin/policies", s.page(lobby.PermRead, s.policiesPage))
	mux.Handle("GET /admin/policies/new", s.page(lobby.PermConfigure, s.policyNew))
	mux.Handle("GET /admin/policies/simulate", s.page(lobby.PermRead, s.simulatePage))
	mux.Handle("POST /admin/policies", s.page(lobby.PermConfigure, s.policyCreate))
	mux.Handle("GET /admin/policies/{ref}", s.page(lobby.PermRead, s.policyPage))
	mux.Handle("POST /admin/policies/{ref}", s.page(lobby.PermConfigure, s.policyUpdate))
	mux.Handle("POST /admin/policies/{ref}/delete", s.page(lobby.PermConfigure, s.policyDelete))

	mux.Handle("GET /admin/users", s.page(lobby.PermManageUsers, s.usersPage))
	mux.Handle("GET /admin/users/new", s.page(lobby.PermManageUsers, s.userNew))
	mux.Handle("POST /admin/users", s.page(lobby.PermManageUsers, s.userCreate))
	mux.Handle("GET /admin/users/{ref}", s.page(lobby.PermManageUsers, s.userPage))
	mux.Handle("POST /admin/users/{ref}", s.page(lobby.PermManageUsers, s.userUpdate))
	mux.Handle("POST /admin/users/{ref}/password", s.page(lobby.PermManageUsers, s.userPassword))
	mux.Handle("POST /admin/users/{ref}/delete", s.page(lobby.PermManageUsers, s.userDelete))
	mux.Handle("GET /admin/groups", s.page(lobby.PermManageUsers, s.groupsPage))
	mux.Handle("GET /admin/roles", s.page(lobby.PermManageUsers, s.rolesPage))

	mux.Handle("GET /admin/jobs", s.page(lobby.PermRead, s.jobsPage))
	mux.Handle("GET /admin/jobs/table", s.page(lobby.PermRead, s.jobsFragment))
	mux.Handle("POST /admin/jobs/{id}/retry", s.page(lobby.PermOperate, s.jobRetry))
	mux.Handle("POST /admin/jobs/{id}/cancel", s.page(lobby.PermOperate, s.jobCancel))

	mux.Handle("GET /admin/audit", s.page(lobby.PermRead, s.auditPage))

	mux.Handle("GET /admin/settings", s.page(lobby.PermConfigure, s.settingsPage))
	mux.Handle("POST /admin/settings", s.page(lobby.PermConfigure, s.settingsUpdate))
}

// adminMoreFuncs are template functions those pages add.
func adminMoreFuncs() template.FuncMap {
	return template.FuncMap{
		"release": releaseText,
		"ref":     pathRef,
		"withQ":   withQuery,
		"fieldOf": fieldOf,
		"capital": capital,
	}
}

// reservedRefs are path segments that name pages, not things: a policy or
// user called "new" is linked by its ID instead.
var reservedRefs = map[string]bool{"new": true, "simulate": true}

// pathRef is how a link names a thing: by name, which reads well in the
// address bar, unless the name is a page of its own.
func pathRef(name, id string) string {
	if reservedRefs[name] || name == "" {
		return id
	}
	return name
}

// capital starts s with a capital letter ("start" → "Start").
func capital(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// withQuery is the current list view's query with one key set (or
// removed when v is empty), for filter links.
func withQuery(lq listQuery, k, v string) template.URL {
	q := url.Values{}
	for key, vs := range lq.Values {
		q[key] = vs
	}
	q.Del("page")
	if v == "" {
		q.Del(k)
	} else {
		q.Set(k, v)
	}
	return template.URL("?" + q.Encode())
}

// releaseText says in words when a policy's assignment ends.
func releaseText(r lobby.ReleasePlan) string {
	var parts []string
	if r.OnLogoff {
		parts = append(parts, "at log-off")
	}
	if r.DisconnectMinutes > 0 {
		parts = append(parts, "after "+plural(r.DisconnectMinutes, "minute")+" disconnected")
	}
	if r.AtTime != "" {
		parts = append(parts, "every day at "+r.AtTime)
	}
	if len(parts) == 0 {
		return "kept until released by hand"
	}
	return "released " + strings.Join(parts, ", or ")
}

func plural(n int, what string) string {
	s := strconv.Itoa(n) + " " + what
	if n != 1 {
		s += "s"
	}
	return s
}

// redirectBack answers a successful form post: a flash for the next page
// and a redirect to it.
func (s *Server) redirectBack(w http.ResponseWriter, r *http.Request, to, msg string) error {
	if msg != "" {
		s.flash(w, r, msg)
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
	return nil
}
