package web

import (
	"net/http"
	"strings"

	"lobby/internal/lobby"
	"lobby/internal/manage"
)

type simulateData struct {
	Form   *form
	User   *lobby.User // the user asked about; nil before asking
	Offers []manage.Offer
}

// simulatePage answers "what would this user get?" with manage.Simulate,
// which runs the resolution a real connect runs.
func (s *Server) simulatePage(w http.ResponseWriter, r *http.Request) error {
	f := newForm()
	name := strings.TrimSpace(r.URL.Query().Get("user"))
	f.Values.Set("user", name)
	d := simulateData{Form: f}
	if name == "" {
		return s.render(w, r, http.StatusOK, "admin_simulate", "What would a user get?", d)
	}
	u, err := s.Manage.User(r.Context(), name)
	if lobby.ErrorKind(err) == lobby.KindNotFound {
		f.Errors["user"] = "there is no user " + name + ": check the spelling (usernames are case-sensitive)"
		return s.render(w, r, http.StatusBadRequest, "admin_simulate", "What would a user get?", d)
	}
	if err != nil {
		return err
	}
	if d.Offers, err = s.Manage.Simulate(r.Context(), s.actor(r), u); err != nil {
		return err
	}
	d.User = u
	return s.render(w, r, http.StatusOK, "admin_simulate", "What would "+u.Username+" get?", d)
}
