// Package web serves the browser side of a node: the user portal (sign in,
// my desktops, the desktop in a browser tab through noVNC) and the admin
// console. Pages are html/template rendered on the server with htmx for
// the live parts. Every change goes through manage (or assign), the code
// the REST API runs, so a page can do nothing the API would refuse.
package web

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"errors"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"time"

	"lobby/internal/assign"
	"lobby/internal/auth"
	"lobby/internal/hostconn"
	"lobby/internal/jobs"
	"lobby/internal/lobby"
	"lobby/internal/manage"
	"lobby/internal/store"
)

//go:embed static
var staticFS embed.FS

// NodeInfo describes the node for the settings and status pages.
type NodeInfo struct {
	SiteID   int
	Database string // "sqlite" or "postgres"
	DataDir  string
	Listen   string
	TLS      bool
}

// Server holds what the pages need.
type Server struct {
	Store   store.Store
	Auth    *auth.Service
	Assign  *assign.Service
	Manage  *manage.Service
	Queue   *jobs.Queue
	Hosts   *hostconn.Registry
	Version string
	Node    NodeInfo
	Logger  *slog.Logger
	// Throttle limits failed sign-ins; nil allows every attempt.
	Throttle *auth.Throttle
	// Maintenance says why the node is in maintenance mode (the cluster
	// decides), "" when it is not; nil means never. Every page shows it.
	Maintenance func() string
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	pages  map[string]*pageTemplate
	static http.Handler
}

type ctxKey int

const (
	sessionKey ctxKey = iota
	requestIDKey
)

// Handler returns the HTTP handler of the pages and their static files.
func (s *Server) Handler() http.Handler {
	if s.Logger == nil {
		s.Logger = slog.Default()
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	s.pages = mustParsePages()
	sub, _ := fs.Sub(staticFS, "static")
	s.static = http.StripPrefix("/static/", cacheStatic(http.FileServerFS(sub)))
	if _, err := fs.Stat(sub, "npm/novnc/core/rfb.js"); err != nil {
		s.Logger.Warn("noVNC is not built into this binary: the desktop page cannot connect; build with make (it runs npm ci)")
	}
	mux := http.NewServeMux()
	s.routes(mux)
	csrf := http.NewCrossOriginProtection()
	return s.instrument(csrf.Handler(mux))
}

func (s *Server) routes(mux *http.ServeMux) {
	mux.Handle("GET /static/", s.static)
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/static/favicon.svg", http.StatusMovedPermanently)
	})

	mux.Handle("GET /{$}", s.page(lobby.PermConnect, s.home))
	mux.Handle("GET /login", s.public(s.loginForm))
	mux.Handle("POST /login", s.public(s.loginSubmit))
	mux.Handle("POST /logout", s.page(lobby.PermConnect, s.logout))

	mux.Handle("GET /desktops", s.page(lobby.PermConnect, s.myDesktops))
	mux.Handle("GET /desktops/offers", s.page(lobby.PermConnect, s.offersFragment))
	mux.Handle("POST /connect", s.page(lobby.PermConnect, s.connect))
	mux.Handle("GET /desktop/{id}", s.page(lobby.PermConnect, s.desktopPage))
	mux.Handle("POST /desktop/{id}/ticket", s.page(lobby.PermConnect, s.ticket))
	mux.Handle("POST /desktop/{id}/release", s.page(lobby.PermConnect, s.release))
	mux.Handle("GET /account", s.page(lobby.PermConnect, s.account))
	mux.Handle("POST /account/password", s.page(lobby.PermConnect, s.changePassword))

	s.adminRoutes(mux)

	mux.Handle("/", s.public(func(w http.ResponseWriter, r *http.Request) error {
		return lobby.Errorf(lobby.KindNotFound, "there is no page at %s", r.URL.Path)
	}))
}

// handler is a page handler; an error renders the error page (or, for an
// htmx request, an error fragment).
type handler func(w http.ResponseWriter, r *http.Request) error

// public serves a page that needs no sign-in; the session is still read
// so the layout can show who is signed in.
func (s *Server) public(h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if sess, err := s.session(r); err == nil {
			r = r.WithContext(context.WithValue(r.Context(), sessionKey, sess))
		}
		if r.Method == http.MethodPost && r.URL.Path != "/login" {
			if err := s.checkCSRF(r); err != nil {
				s.fail(w, r, err)
				return
			}
		}
		if err := h(w, r); err != nil {
			s.fail(w, r, err)
		}
	})
}

// page serves a page for a signed-in user whose role holds perm: a
// visitor is sent to the sign-in page, a user without the role gets 403.
// Unsafe methods must carry the session's CSRF token.
func (s *Server) page(perm lobby.Permission, h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess, err := s.session(r)
		if err != nil {
			if k := lobby.ErrorKind(err); errors.Is(err, http.ErrNoCookie) || k == lobby.KindUnauthorized || k == lobby.KindForbidden {
				s.toLogin(w, r)
			} else {
				s.fail(w, r, err) // the store is down: say so, do not ask to sign in again
			}
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), sessionKey, sess))
		if err := manage.Allow(s.actor(r), perm); err != nil {
			s.fail(w, r, err)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if err := s.checkCSRF(r); err != nil {
				s.fail(w, r, err)
				return
			}
		}
		if err := h(w, r); err != nil {
			s.fail(w, r, err)
		}
	})
}

// toLogin sends a visitor to the sign-in page, coming back here after.
func (s *Server) toLogin(w http.ResponseWriter, r *http.Request) {
	next := r.URL.RequestURI()
	if r.Method != http.MethodGet || isHTMX(r) {
		next = "/"
	}
	target := "/login"
	if next != "/" {
		target += "?next=" + urlQueryEscape(next)
	}
	if isHTMX(r) {
		// A fragment must not swap a whole sign-in page into a table.
		w.Header().Set("HX-Redirect", target)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

func isHTMX(r *http.Request) bool { return r.Header.Get("HX-Request") == "true" }

// actor is the signed-in user and their address.
func (s *Server) actor(r *http.Request) manage.Actor {
	a := manage.Actor{Remote: remote(r)}
	if sess := sessionOf(r); sess != nil {
		a.User = sess.User
	}
	return a
}

// remote is the client's address for the audit log and the throttle.
func remote(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// instrument adds the security headers, a request ID and panic recovery.
func (s *Server) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var id [8]byte
		_, _ = rand.Read(id[:])
		reqID := hex.EncodeToString(id[:])
		h := w.Header()
		h.Set("X-Request-ID", reqID)
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
		if isTLS(r) {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		r = r.WithContext(context.WithValue(r.Context(), requestIDKey, reqID))
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.Logger.Error("panic in page", "request_id", reqID, "path", r.URL.Path, "panic", p)
				s.fail(w, r, lobby.Errorf(lobby.KindInternal, "internal error"))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// contentSecurityPolicy allows only the node's own scripts, styles and
// connections: no inline script or style, no frames, no plugins.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'; manifest-src 'self'"

func requestID(r *http.Request) string { id, _ := r.Context().Value(requestIDKey).(string); return id }

func isTLS(r *http.Request) bool {
	return r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https"
}

// cacheStatic lets browsers keep static files for a while; their names do
// not change within a version, and a restart with a new binary is rare.
func cacheStatic(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		h.ServeHTTP(w, r)
	})
}
