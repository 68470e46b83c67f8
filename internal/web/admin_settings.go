package web

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"lobby/internal/lobby"
	"lobby/internal/manage"
	"lobby/internal/store"
)

// bannerKey is the setting holding the message the portal shows everyone.
const bannerKey = "portal.banner"

// maxBanner bounds the banner, in characters.
const maxBanner = 500

// banner is the portal banner message, "" when none is set (or the store
// cannot say: a missing banner must never break the portal).
func (s *Server) banner(ctx context.Context) string {
	v, err := s.Store.GetSetting(ctx, bannerKey)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			s.Logger.Warn("read portal banner", "err", err)
		}
		return ""
	}
	return v
}

// validBanner checks a banner message: one line of printable text.
func validBanner(v string) (string, error) {
	v = strings.TrimSpace(v)
	if !utf8.ValidString(v) {
		return "", lobby.FieldErrorf("banner", "the message is not valid text")
	}
	if n := utf8.RuneCountInString(v); n > maxBanner {
		return "", lobby.FieldErrorf("banner", "the message is %d characters long: keep it to %d", n, maxBanner)
	}
	if strings.IndexFunc(v, func(r rune) bool { return !unicode.IsPrint(r) && r != ' ' }) >= 0 {
		return "", lobby.FieldErrorf("banner", "the message must be one line of text, without line breaks or control characters")
	}
	return v, nil
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

// settingsUpdate saves the banner and audits the change. (manage has no
// settings operation yet; this is the same check and audit it would do.)
func (s *Server) settingsUpdate(w http.ResponseWriter, r *http.Request) error {
	f, err := parseForm(w, r)
	if err != nil {
		return err
	}
	a := s.actor(r)
	if err := manage.Allow(a, lobby.PermConfigure); err != nil {
		return err
	}
	v, err := validBanner(r.PostFormValue("banner"))
	if err != nil {
		f.Fail(err)
		return s.render(w, r, http.StatusBadRequest, "admin_settings", "Settings", s.settingsData(r.Context(), f))
	}
	if v == s.banner(r.Context()) {
		return s.redirectBack(w, r, "/admin/settings", "Nothing changed.")
	}
	detail := "portal banner cleared"
	if v != "" {
		detail = "portal banner: " + v
	}
	err = s.Store.InTx(r.Context(), func(q store.Queries) error {
		if err := q.SetSetting(r.Context(), bannerKey, v); err != nil {
			return err
		}
		return q.AppendAudit(r.Context(), &lobby.AuditEvent{At: s.Now(), Actor: a.User.Username, Action: "setting.update", Target: bannerKey, Detail: detail, Remote: a.Remote})
	})
	if err != nil {
		return err
	}
	return s.redirectBack(w, r, "/admin/settings", "Settings saved.")
}
