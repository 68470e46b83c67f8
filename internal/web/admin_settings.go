package web

import (
	"context"
	"net/http"

	"lobby/internal/lobby"
)

// banner is the portal banner message, "" when none is set (or the store
// cannot say: a missing banner must never break the portal).
func (s *Server) banner(ctx context.Context) string {
	v, err := s.Manage.Banner(ctx)
	if err != nil {
		s.Logger.Warn("read portal banner", "err", err)
	}
	return v
}

type settingsData struct {
	Node    NodeInfo
	Version string
	Form    *form
	Banner  string // as stored
}

func (s *Server) settingsData(ctx context.Context, f *form) settingsData {
	b := s.banner(ctx)
	if f == nil {
		f = newForm()
		f.Values.Set("banner", b)
	}
	return settingsData{Node: s.Node, Version: s.Version, Form: f, Banner: b}
}

func (s *Server) settingsPage(w http.ResponseWriter, r *http.Request) error {
	return s.render(w, r, http.StatusOK, "admin_settings", "Settings", s.settingsData(r.Context(), nil))
}

// settingsUpdate saves the banner through manage (role check and audit).
func (s *Server) settingsUpdate(w http.ResponseWriter, r *http.Request) error {
	f, err := parseForm(w, r)
	if err != nil {
		return err
	}
	changed, err := s.Manage.SetBanner(r.Context(), s.actor(r), r.PostFormValue("banner"))
	if lobby.ErrorKind(err) == lobby.KindInvalid {
		f.Fail(err)
		return s.render(w, r, http.StatusBadRequest, "admin_settings", "Settings", s.settingsData(r.Context(), f))
	}
	if err != nil {
		return err
	}
	if !changed {
		return s.redirectBack(w, r, "/admin/settings", "Nothing changed.")
	}
	return s.redirectBack(w, r, "/admin/settings", "Settings saved.")
}
