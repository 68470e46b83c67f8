// Package api serves Lobby's REST API under /api/v1, plus /version,
// /healthz, /readyz, /metrics and the console gateway. Every call is
// authorized by role; every change is written to the audit log.
package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"lobby/internal/assign"
	"lobby/internal/auth"
	"lobby/internal/health"
	"lobby/internal/httpjson"
	"lobby/internal/jobs"
	"lobby/internal/lobby"
	"lobby/internal/manage"
	"lobby/internal/store"
)

// Server holds what the handlers need.
type Server struct {
	Store store.Store
	Auth  *auth.Service
	// Throttle limits failed sign-ins (shared with the pages); nil allows
	// every attempt.
	Throttle *auth.Throttle
	Assign   *assign.Service
	Queue    *jobs.Queue
	Gateway  http.Handler
	Version  string
	Logger   *slog.Logger
	// Manage is the administrative service shared with the web console;
	// nil makes one from the fields above (without links or join tokens).
	Manage *manage.Service
	// Ready reports whether the node should get traffic (nil: store ping).
	Ready func(ctx context.Context) error
	// Ping is this node's answer to the health probes of the other nodes
	// (GET /api/v1/health/ping).
	Ping func() health.Ping
	// Registry receives the API's metrics; nil makes a private one.
	Registry *prometheus.Registry

	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	assigns  prometheus.Counter
}

type ctxKey int

const (
	userKey ctxKey = iota
	tokenKey
)

// Handler returns the HTTP handler of the API.
func (s *Server) Handler() http.Handler {
	if s.Manage == nil {
		s.Manage = &manage.Service{Store: s.Store, Hasher: s.Auth.Hasher, Assign: s.Assign, Queue: s.Queue, Now: s.Auth.Now}
	}
	s.initMetrics()
	mux := http.NewServeMux()
	s.routes(mux)
	return s.instrument(mux)
}

func (s *Server) routes(mux *http.ServeMux) {
	type route struct {
		pattern string
		perm    lobby.Permission // "" means no sign-in needed
		h       func(http.ResponseWriter, *http.Request) error
	}
	public := lobby.Permission("")
	routes := []route{
		{"POST /api/v1/login", public, s.login},
		{"POST /api/v1/logout", lobby.PermConnect, s.logout},
		{"GET /api/v1/me", lobby.PermConnect, s.me},

		{"POST /api/v1/connect", lobby.PermConnect, s.connect},
		{"POST /api/v1/release", lobby.PermConnect, s.release},
		{"GET /api/v1/assignments", lobby.PermConnect, s.listAssignments},
		{"GET /api/v1/offers", lobby.PermConnect, s.offers},

		{"GET /api/v1/pools", lobby.PermRead, s.listPools},
		{"POST /api/v1/pools", lobby.PermConfigure, s.createPool},
		{"GET /api/v1/pools/{ref}", lobby.PermRead, s.getPool},
		{"PUT /api/v1/pools/{ref}", lobby.PermConfigure, s.updatePool},
		{"DELETE /api/v1/pools/{ref}", lobby.PermConfigure, s.deletePool},

		{"GET /api/v1/desktops", lobby.PermRead, s.listDesktops},
		{"GET /api/v1/desktops/{id}", lobby.PermRead, s.getDesktop},
		{"POST /api/v1/desktops/{id}/actions", lobby.PermOperate, s.desktopAction},

		{"GET /api/v1/hosts", lobby.PermRead, s.listHosts},
		{"GET /api/v1/hosts/{id}", lobby.PermRead, s.getHost},
		{"POST /api/v1/hosts/{ref}/actions", lobby.PermConfigure, s.hostAction},
		{"DELETE /api/v1/hosts/{ref}", lobby.PermConfigure, s.removeHost},
		{"GET /api/v1/links", lobby.PermRead, s.listLinks},
		{"GET /api/v1/nodes", lobby.PermRead, s.listNodes},
		{"POST /api/v1/nodes/{site}/actions", lobby.PermConfigure, s.nodeAction},
		{"DELETE /api/v1/nodes/{site}", lobby.PermConfigure, s.removeNode},
		{"GET /api/v1/health", lobby.PermRead, s.clusterHealth},

		{"GET /api/v1/tokens", lobby.PermConfigure, s.listTokens},
		{"POST /api/v1/tokens", lobby.PermConfigure, s.createToken},
		{"DELETE /api/v1/tokens/{id}", lobby.PermConfigure, s.revokeToken},

		{"GET /api/v1/users", lobby.PermManageUsers, s.listUsers},
		{"POST /api/v1/users", lobby.PermManageUsers, s.createUser},
		{"GET /api/v1/users/{ref}", lobby.PermManageUsers, s.getUser},
		{"PUT /api/v1/users/{ref}", lobby.PermManageUsers, s.updateUser},
		{"DELETE /api/v1/users/{ref}", lobby.PermManageUsers, s.deleteUser},
		{"POST /api/v1/users/{ref}/password", lobby.PermConnect, s.setPassword},

		{"GET /api/v1/policies", lobby.PermRead, s.listPolicies},
		{"POST /api/v1/policies", lobby.PermConfigure, s.createPolicy},
		{"GET /api/v1/policies/{ref}", lobby.PermRead, s.getPolicy},
		{"PUT /api/v1/policies/{ref}", lobby.PermConfigure, s.updatePolicy},
		{"DELETE /api/v1/policies/{ref}", lobby.PermConfigure, s.deletePolicy},

		{"GET /api/v1/jobs", lobby.PermRead, s.listJobs},
		{"POST /api/v1/jobs/actions", lobby.PermOperate, s.siteJobsAction},
		{"GET /api/v1/jobs/{id}", lobby.PermRead, s.getJob},
		{"POST /api/v1/jobs/{id}/actions", lobby.PermOperate, s.jobAction},

		{"GET /api/v1/audit", lobby.PermRead, s.listAudit},
	}
	for _, rt := range routes {
		mux.Handle(rt.pattern, s.endpoint(rt.perm, rt.h))
	}
	mux.Handle("GET "+health.PingPath, s.pingHandler())
	mux.Handle("/api/", s.endpoint(public, func(w http.ResponseWriter, r *http.Request) error {
		return lobby.Errorf(lobby.KindNotFound, "no API route %s %s: see the API reference in the README", r.Method, r.URL.Path)
	}))
	mux.HandleFunc("GET /version", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, s.Version)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.Registry, promhttp.HandlerOpts{}))
	if s.Gateway != nil {
		mux.Handle("GET /gateway/vnc", s.Gateway)
	}
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	check := s.Ready
	if check == nil {
		check = s.Store.Ping
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if err := check(ctx); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "not ready:", err)
		return
	}
	fmt.Fprintln(w, "ready")
}

// endpoint wraps a handler with authentication, the permission check and
// error answers.
func (s *Server) endpoint(perm lobby.Permission, h func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if perm != "" {
			u, tok, err := s.authenticate(r)
			if err == nil && !u.Role.Can(perm) {
				err = lobby.Errorf(lobby.KindForbidden, "your role %q does not allow this (it needs %q)", u.Role, perm)
			}
			if err != nil {
				httpjson.Error(w, r, s.Logger, err)
				return
			}
			ctx := context.WithValue(r.Context(), userKey, u)
			r = r.WithContext(context.WithValue(ctx, tokenKey, tok))
		}
		if err := h(w, r); err != nil {
			httpjson.Error(w, r, s.Logger, err)
		}
	})
}

func (s *Server) authenticate(r *http.Request) (*lobby.User, *store.Token, error) {
	h := r.Header.Get("Authorization")
	secret, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || secret == "" {
		return nil, nil, lobby.Errorf(lobby.KindUnauthorized, "sign in first: send Authorization: Bearer <token> (POST /api/v1/login gives one)")
	}
	return s.Auth.Authenticate(r.Context(), strings.TrimSpace(secret))
}

func userOf(r *http.Request) *lobby.User { u, _ := r.Context().Value(userKey).(*lobby.User); return u }

func tokenOf(r *http.Request) *store.Token {
	t, _ := r.Context().Value(tokenKey).(*store.Token)
	return t
}

// remote is the client's address for the audit log.
func remote(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// audit appends an event for the signed-in user.
func (s *Server) audit(r *http.Request, q store.Queries, action, target, detail string) error {
	actor := "anonymous"
	if u := userOf(r); u != nil {
		actor = u.Username
	}
	return q.AppendAudit(r.Context(), &lobby.AuditEvent{At: s.Auth.Now(), Actor: actor, Action: action, Target: target, Detail: detail, Remote: remote(r)})
}

// storeErr turns store sentinels into user-facing errors about what.
var storeErr = manage.StoreErr

// list is the shape of every list answer.
type list[T any] struct {
	Items []T    `json:"items"`
	Next  string `json:"next"`
}

// page reads ?after= and ?limit=.
func page(r *http.Request) (store.ListOptions, error) {
	opt := store.ListOptions{After: r.URL.Query().Get("after")}
	if l := r.URL.Query().Get("limit"); l != "" {
		if _, err := fmt.Sscanf(l, "%d", &opt.Limit); err != nil || opt.Limit < 1 {
			return opt, lobby.Errorf(lobby.KindInvalid, "limit %q is not valid: give a number from 1 to %d", l, store.MaxLimit)
		}
	}
	if opt.Limit == 0 {
		opt.Limit = store.DefaultLimit
	}
	opt.Limit = min(opt.Limit, store.MaxLimit)
	return opt, nil
}

// paged builds a list answer; next is the last ID when the page is full.
func paged[T any](items []T, opt store.ListOptions, id func(T) string) list[T] {
	l := list[T]{Items: items}
	if l.Items == nil {
		l.Items = []T{}
	}
	if len(items) == opt.Limit && len(items) > 0 {
		l.Next = id(items[len(items)-1])
	}
	return l
}

func (s *Server) initMetrics() {
	if s.Registry == nil {
		s.Registry = prometheus.NewRegistry()
	}
	s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lobby_http_requests_total", Help: "HTTP requests by route and status."}, []string{"route", "code"})
	s.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "lobby_http_request_seconds", Help: "HTTP request latency by route.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}, []string{"route"})
	s.assigns = prometheus.NewCounter(prometheus.CounterOpts{Name: "lobby_assignments_total", Help: "Desktops handed out."})
	s.Registry.MustRegister(s.requests, s.latency, s.assigns)
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) { w.code = code; w.ResponseWriter.WriteHeader(code) }

// Unwrap lets http.ResponseController and the WebSocket upgrade reach the
// underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// instrument adds a request ID, metrics and panic recovery.
func (s *Server) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		var id [8]byte
		_, _ = rand.Read(id[:])
		reqID := hex.EncodeToString(id[:])
		w.Header().Set("X-Request-ID", reqID)
		sw := &statusWriter{ResponseWriter: w, code: 200}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.Logger.Error("panic in handler", "request_id", reqID, "path", r.URL.Path, "panic", p)
				httpjson.Error(sw, r, nil, lobby.Errorf(lobby.KindInternal, "internal error (request %s)", reqID))
			}
			route := r.Pattern
			if route == "" {
				route = "unmatched"
			}
			s.requests.WithLabelValues(route, fmt.Sprint(sw.code)).Inc()
			s.latency.WithLabelValues(route).Observe(time.Since(start).Seconds())
		}()
		next.ServeHTTP(sw, r)
	})
}
