package web

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"

	"lobby/internal/lobby"
	"lobby/internal/store"
)

// The session cookie holds an API token (the same tokens, expiry and
// revocation as bearer tokens). HttpOnly keeps it from scripts; SameSite
// Lax keeps it off cross-site posts; Secure whenever served over HTTPS.
const (
	sessionCookie = "lobby_session"
	flashCookie   = "lobby_flash"
)

type session struct {
	User   *lobby.User
	Token  *store.Token
	secret string
}

func sessionOf(r *http.Request) *session { s, _ := r.Context().Value(sessionKey).(*session); return s }

func (s *Server) session(r *http.Request) (*session, error) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil, err
	}
	u, tok, err := s.Auth.Authenticate(r.Context(), c.Value)
	if err != nil {
		return nil, err
	}
	return &session{User: u, Token: tok, secret: c.Value}, nil
}

// csrfToken is derived from the session's secret, which only the browser
// holding the HttpOnly cookie and the node know: a cross-site page can
// neither read it nor compute it. It changes with every sign-in.
func (sess *session) csrfToken() string {
	m := hmac.New(sha256.New, []byte(sess.secret))
	m.Write([]byte("lobby csrf v1"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:18])
}

// checkCSRF accepts an unsafe request only with the session's token, in
// the form field "csrf" or the X-CSRF-Token header (htmx sends it).
func (s *Server) checkCSRF(r *http.Request) error {
	sess := sessionOf(r)
	if sess == nil {
		return lobby.Errorf(lobby.KindUnauthorized, "your session ended: sign in again")
	}
	got := r.Header.Get("X-CSRF-Token")
	if got == "" {
		r.Body = http.MaxBytesReader(nil, r.Body, maxForm)
		got = r.PostFormValue("csrf")
	}
	if !hmac.Equal([]byte(got), []byte(sess.csrfToken())) {
		return lobby.Errorf(lobby.KindForbidden, "the form is out of date or came from another site: reload the page and try again")
	}
	return nil
}

// maxForm bounds a form body; no form of ours comes near it.
const maxForm = 64 << 10

func (s *Server) setSession(w http.ResponseWriter, r *http.Request, secret string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: secret, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: isTLS(r), SameSite: http.SameSiteLaxMode,
	})
}

// flash keeps a one-line message for the next page (after a redirect).
func (s *Server) flash(w http.ResponseWriter, r *http.Request, msg string) {
	http.SetCookie(w, &http.Cookie{
		Name: flashCookie, Value: url.QueryEscape(msg), Path: "/", MaxAge: 60,
		HttpOnly: true, Secure: isTLS(r), SameSite: http.SameSiteLaxMode,
	})
}

func (s *Server) takeFlash(w http.ResponseWriter, r *http.Request) string {
	c, err := r.Cookie(flashCookie)
	if err != nil {
		return ""
	}
	http.SetCookie(w, &http.Cookie{Name: flashCookie, Path: "/", MaxAge: -1, HttpOnly: true, Secure: isTLS(r), SameSite: http.SameSiteLaxMode})
	msg, _ := url.QueryUnescape(c.Value)
	return msg
}

type loginData struct {
	Form *form
	Next string
}

func (s *Server) loginForm(w http.ResponseWriter, r *http.Request) error {
	if sessionOf(r) != nil {
		http.Redirect(w, r, safeNext(r.URL.Query().Get("next")), http.StatusSeeOther)
		return nil
	}
	return s.render(w, r, http.StatusOK, "login", "Sign in", loginData{Form: newForm(), Next: safeNext(r.URL.Query().Get("next"))})
}

func (s *Server) loginSubmit(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		return lobby.Errorf(lobby.KindInvalid, "the sign-in form could not be read: reload the page and try again")
	}
	f := formOf(r)
	data := loginData{Form: f, Next: safeNext(r.PostFormValue("next"))}
	username, password := strings.TrimSpace(r.PostFormValue("username")), r.PostFormValue("password")
	addr := remote(r)
	fail := func(status int, err error) error {
		f.Fail(err)
		if f.Errors["username"] == "" && f.Errors["password"] == "" && f.Error == "" {
			f.Error = lobby.ErrorMessage(err)
		}
		return s.render(w, r, status, "login", "Sign in", data)
	}
	if username == "" {
		return fail(http.StatusBadRequest, lobby.FieldErrorf("username", "enter your username"))
	}
	if password == "" {
		return fail(http.StatusBadRequest, lobby.FieldErrorf("password", "enter your password"))
	}
	if err := s.Throttle.Check(username, addr); err != nil {
		s.auditLogin(r, username, "user.login_throttled", lobby.ErrorMessage(err))
		w.Header().Set("Retry-After", "60")
		return fail(http.StatusTooManyRequests, err)
	}
	secret, tok, u, err := s.Auth.Login(r.Context(), username, password)
	if err != nil {
		switch lobby.ErrorKind(err) {
		case lobby.KindUnauthorized, lobby.KindForbidden:
			s.Throttle.Fail(username, addr)
			s.auditLogin(r, username, "user.login_failed", "web sign-in")
			return fail(http.StatusUnauthorized, lobby.Errorf(lobby.KindUnauthorized, "%s", lobby.ErrorMessage(err)))
		case lobby.KindMaintenance:
			s.auditLogin(r, username, "user.login_refused", "web sign-in, maintenance mode")
			w.Header().Set("Retry-After", "60")
			return fail(http.StatusServiceUnavailable, err)
		}
		return err
	}
	s.Throttle.Succeed(username)
	if err := s.Store.AppendAudit(r.Context(), &lobby.AuditEvent{At: s.Now(), Actor: u.Username, Action: "user.login", Target: u.ID, Detail: "web sign-in", Remote: addr}); err != nil {
		return err
	}
	s.setSession(w, r, secret, int(tok.Expires.Sub(s.Now()).Seconds()))
	http.Redirect(w, r, data.Next, http.StatusSeeOther)
	return nil
}

func (s *Server) auditLogin(r *http.Request, username, action, detail string) {
	_ = s.Store.AppendAudit(r.Context(), &lobby.AuditEvent{At: s.Now(), Actor: username, Action: action, Target: username, Detail: detail, Remote: remote(r)})
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) error {
	sess := sessionOf(r)
	if err := s.Store.RevokeToken(r.Context(), sess.Token.ID); err != nil {
		return err
	}
	_ = s.Store.AppendAudit(r.Context(), &lobby.AuditEvent{At: s.Now(), Actor: sess.User.Username, Action: "user.logout", Target: sess.User.ID, Detail: "web sign-out", Remote: remote(r)})
	s.setSession(w, r, "", -1)
	s.flash(w, r, "You are signed out.")
	http.Redirect(w, r, "/login", http.StatusSeeOther)
	return nil
}

// safeNext keeps a post-sign-in redirect on this site.
func safeNext(next string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/"
	}
	return next
}

func urlQueryEscape(s string) string { return url.QueryEscape(s) }
