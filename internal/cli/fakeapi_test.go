package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"lobby/internal/client"
	"lobby/internal/lobby"
)

// fakeAPI mimics the REST contract closely enough for the CLI: two tokens
// (admin and user), a pool "demo" with desktop "demo-1", and a gateway that
// greets with an RFB version and echoes.
type fakeAPI struct {
	mu       sync.Mutex
	connects int
	tickets  map[string]bool // unused tickets
	released []string
	actions  []string
	created  []string // bodies of creates, raw
	updated  []string // "PUT path body" of updates
	password map[string]string
}

const (
	adminToken = "tok-admin"
	userToken  = "tok-user"
	adminPW    = "correct horse battery"
)

var (
	t0       = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	demoPool = client.PoolWithCounts{
		Pool:   lobby.Pool{ID: "pool_demo", Name: "demo", MinSize: 1, MaxSize: 5, MinFree: 1, NamePattern: "demo-{n}", Template: "default", Created: t0},
		Counts: &client.PoolCounts{Total: 2, Free: 1, Assigned: 1},
	}
	labPool  = client.PoolWithCounts{Pool: lobby.Pool{ID: "pool_lab", Name: "lab", MaxSize: 3, Created: t0}}
	desktop1 = lobby.Desktop{ID: "dsk_1", Name: "demo-1", HostID: "host_a", PoolID: "pool_demo", Power: lobby.PowerRunning, ConsoleKind: "vnc", Tags: []string{}, Created: t0, Updated: t0}
	admin    = lobby.User{ID: "usr_admin", Username: "admin", Role: lobby.RoleAdmin, Groups: []string{}, Created: t0}
	alice    = lobby.User{ID: "usr_alice", Username: "alice", Role: lobby.RoleUser, Groups: []string{"staff"}, Created: t0}
	everyone = lobby.Policy{ID: "pol_1", Name: "everyone", Pools: []string{"pool_demo"}, Users: []string{"*"}, Groups: []string{}, MaxDesktops: 1,
		Mode: lobby.NonPersistent, Release: lobby.ReleasePlan{OnLogoff: true, AtTime: "19:30"}, PowerPlan: lobby.PowerStop, Priority: 2, Created: t0}
)

func newFakeAPI() *fakeAPI {
	return &fakeAPI{tickets: map[string]bool{}, password: map[string]string{}}
}

func apiErr(w http.ResponseWriter, kind lobby.Kind, status int, msg string) {
	reply(w, status, map[string]any{"error": map[string]string{"code": string(kind), "message": msg}})
}

func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func items(v any, next string) map[string]any { return map[string]any{"items": v, "next": next} }

// handler returns the fake's routes.
func (f *fakeAPI) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/login", f.login)
	mux.HandleFunc("GET /version", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "1.2.3\n") })
	mux.HandleFunc("GET /gateway/vnc", f.gateway)
	api := http.NewServeMux()
	api.HandleFunc("POST /api/v1/logout", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })
	api.HandleFunc("GET /api/v1/me", func(w http.ResponseWriter, r *http.Request) { reply(w, 200, caller(r)) })
	f.pools(api)
	f.desktops(api)
	f.users(api)
	f.misc(api)
	f.links(api)
	mux.Handle("/api/v1/", auth(api))
	return mux
}

func caller(r *http.Request) lobby.User {
	if r.Header.Get("Authorization") == "Bearer "+adminToken {
		return admin
	}
	return alice
}

// auth checks the bearer token and lets only the admin past reads and
// writes other than connect, release, me, assignments and logout.
func auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Header.Get("Authorization") {
		case "Bearer " + adminToken:
		case "Bearer " + userToken:
			switch r.URL.Path {
			case "/api/v1/connect", "/api/v1/release", "/api/v1/me", "/api/v1/assignments", "/api/v1/logout", "/api/v1/offers", "/api/v1/users/usr_alice/password":
			default:
				apiErr(w, lobby.KindForbidden, 403, "your role does not allow this")
				return
			}
		default:
			apiErr(w, lobby.KindUnauthorized, 401, "token expired")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (f *fakeAPI) login(w http.ResponseWriter, r *http.Request) {
	var in struct{ Username, Password string }
	_ = json.NewDecoder(r.Body).Decode(&in)
	if in.Username != "admin" || in.Password != adminPW {
		apiErr(w, lobby.KindUnauthorized, 401, "wrong username or password")
		return
	}
	reply(w, 200, map[string]any{"token": adminToken, "expires": t0.Add(100 * 365 * 24 * time.Hour), "user": admin})
}

// create records a create's body and answers 201 with want, or an error
// for the names "taken" (conflict) and "bad!" (invalid).
func (f *fakeAPI) create(w http.ResponseWriter, r *http.Request, want func(name string) any) {
	b, _ := io.ReadAll(r.Body)
	var in struct{ Name, Username string }
	_ = json.Unmarshal(b, &in)
	name := in.Name + in.Username
	switch name {
	case "taken":
		apiErr(w, lobby.KindConflict, 409, fmt.Sprintf("%q is taken", name))
		return
	case "bad!":
		apiErr(w, lobby.KindInvalid, 400, fmt.Sprintf("name %q is not valid", name))
		return
	}
	f.mu.Lock()
	f.created = append(f.created, string(b))
	f.mu.Unlock()
	reply(w, 201, want(name))
}

// update records a PUT and applies its body to the current object at into
// as the API does (fields left out keep their value, unknown ones are
// refused), then answers with out.
func (f *fakeAPI) update(w http.ResponseWriter, r *http.Request, into, out any) {
	b, _ := io.ReadAll(r.Body)
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		apiErr(w, lobby.KindInvalid, 400, err.Error())
		return
	}
	f.mu.Lock()
	f.updated = append(f.updated, r.URL.Path+" "+string(bytes.TrimSpace(b)))
	f.mu.Unlock()
	reply(w, 200, out)
}

// updates returns the updates recorded so far.
func (f *fakeAPI) updates() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.updated...)
}

func (f *fakeAPI) pools(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/pools", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("after") == "" { // two pages, to exercise the cursor
			reply(w, 200, items([]client.PoolWithCounts{demoPool}, "c1"))
			return
		}
		reply(w, 200, items([]client.PoolWithCounts{labPool}, ""))
	})
	mux.HandleFunc("POST /api/v1/pools", func(w http.ResponseWriter, r *http.Request) {
		f.create(w, r, func(name string) any { return lobby.Pool{ID: "pool_" + name, Name: name} })
	})
	mux.HandleFunc("GET /api/v1/pools/{ref}", func(w http.ResponseWriter, r *http.Request) {
		if ref := r.PathValue("ref"); ref != "demo" && ref != demoPool.ID {
			apiErr(w, lobby.KindNotFound, 404, fmt.Sprintf("pool %q not found", ref))
			return
		}
		reply(w, 200, demoPool)
	})
	mux.HandleFunc("PUT /api/v1/pools/{ref}", func(w http.ResponseWriter, r *http.Request) {
		if ref := r.PathValue("ref"); ref != "demo" && ref != demoPool.ID {
			apiErr(w, lobby.KindNotFound, 404, fmt.Sprintf("pool %q does not exist", ref))
			return
		}
		p := demoPool
		f.update(w, r, &p.Pool, &p)
	})
	mux.HandleFunc("DELETE /api/v1/pools/{ref}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("ref") != "demo" {
			apiErr(w, lobby.KindNotFound, 404, "pool not found")
			return
		}
		w.WriteHeader(204)
	})
}

func (f *fakeAPI) desktops(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/desktops", func(w http.ResponseWriter, r *http.Request) {
		switch p := r.URL.Query().Get("pool"); p {
		case "", "demo", "pool_demo":
		case "lab":
			reply(w, 200, items([]lobby.Desktop{}, ""))
			return
		default:
			apiErr(w, lobby.KindNotFound, 404, fmt.Sprintf("pool %q does not exist", p))
			return
		}
		reply(w, 200, items([]lobby.Desktop{desktop1}, ""))
	})
	mux.HandleFunc("GET /api/v1/desktops/{id}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("id") != desktop1.ID {
			apiErr(w, lobby.KindNotFound, 404, "desktop not found")
			return
		}
		reply(w, 200, desktop1)
	})
	mux.HandleFunc("POST /api/v1/desktops/{id}/actions", func(w http.ResponseWriter, r *http.Request) {
		var in struct{ Action string }
		_ = json.NewDecoder(r.Body).Decode(&in)
		f.mu.Lock()
		f.actions = append(f.actions, r.PathValue("id")+" "+in.Action)
		f.mu.Unlock()
		reply(w, 202, map[string]any{"job": map[string]any{"id": 7, "kind": "power", "state": "available", "created": t0}})
	})
	mux.HandleFunc("GET /api/v1/hosts", func(w http.ResponseWriter, r *http.Request) {
		reply(w, 200, items([]lobby.Host{{ID: "host_a", Name: "alpha", Provider: "local", State: lobby.HostUp, SiteID: 1, LastSeen: t0}}, ""))
	})
}

func (f *fakeAPI) users(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/users", func(w http.ResponseWriter, r *http.Request) {
		reply(w, 200, items([]lobby.User{admin, alice}, ""))
	})
	mux.HandleFunc("POST /api/v1/users", func(w http.ResponseWriter, r *http.Request) {
		f.create(w, r, func(name string) any { return lobby.User{ID: "usr_" + name, Username: name, Role: lobby.RoleUser} })
	})
	mux.HandleFunc("GET /api/v1/users/{ref}", func(w http.ResponseWriter, r *http.Request) {
		if ref := r.PathValue("ref"); ref != "alice" && ref != alice.ID {
			apiErr(w, lobby.KindNotFound, 404, "user not found")
			return
		}
		reply(w, 200, alice)
	})
	mux.HandleFunc("POST /api/v1/users/{ref}/password", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("ref")
		if id == "alice" {
			id = alice.ID
		}
		var in struct{ Password string }
		_ = json.NewDecoder(r.Body).Decode(&in)
		f.mu.Lock()
		f.password[id] = in.Password
		f.mu.Unlock()
		w.WriteHeader(204)
	})
	mux.HandleFunc("GET /api/v1/policies", func(w http.ResponseWriter, r *http.Request) {
		reply(w, 200, items([]lobby.Policy{everyone}, ""))
	})
	mux.HandleFunc("PUT /api/v1/policies/{ref}", func(w http.ResponseWriter, r *http.Request) {
		if ref := r.PathValue("ref"); ref != everyone.Name && ref != everyone.ID {
			apiErr(w, lobby.KindNotFound, 404, fmt.Sprintf("policy %q does not exist", ref))
			return
		}
		p := everyone
		f.update(w, r, &p, &p)
	})
	mux.HandleFunc("POST /api/v1/policies", func(w http.ResponseWriter, r *http.Request) {
		f.create(w, r, func(name string) any { return lobby.Policy{ID: "pol_" + name, Name: name} })
	})
}

func (f *fakeAPI) misc(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/jobs", func(w http.ResponseWriter, r *http.Request) {
		reply(w, 200, items([]map[string]any{{"id": "12", "kind": "power", "state": "retryable", "attempt": 2, "max_attempts": 5,
			"errors": []any{map[string]any{"attempt": 1, "error": "host down"}}, "created": t0}}, ""))
	})
	mux.HandleFunc("GET /api/v1/audit", func(w http.ResponseWriter, r *http.Request) {
		reply(w, 200, items([]lobby.AuditEvent{{ID: 9, At: t0, Actor: "admin", Action: "pool.create", Target: "demo", Remote: "127.0.0.1"}}, "9"))
	})
	mux.HandleFunc("GET /api/v1/assignments", func(w http.ResponseWriter, r *http.Request) {
		reply(w, 200, map[string]any{"items": []lobby.Assignment{{ID: "asg_1", DesktopID: desktop1.ID, UserID: alice.ID, PoolID: "pool_demo", Mode: lobby.NonPersistent, Created: t0}}})
	})
	mux.HandleFunc("GET /api/v1/offers", func(w http.ResponseWriter, r *http.Request) {
		reply(w, 200, map[string]any{"items": []map[string]any{{"pool": demoPool.Pool, "policy": "everyone", "mode": "non-persistent",
			"counts": map[string]int{"Total": 2, "Free": 1}, "holding": map[string]any{"id": "asg_1", "desktop_id": desktop1.ID}}}})
	})
	mux.HandleFunc("POST /api/v1/connect", f.connect)
	mux.HandleFunc("POST /api/v1/release", func(w http.ResponseWriter, r *http.Request) {
		var in struct{ Desktop string }
		_ = json.NewDecoder(r.Body).Decode(&in)
		if in.Desktop != desktop1.ID {
			apiErr(w, lobby.KindNotFound, 404, fmt.Sprintf("desktop %q not found", in.Desktop))
			return
		}
		f.mu.Lock()
		f.released = append(f.released, in.Desktop)
		f.mu.Unlock()
		reply(w, 200, map[string]any{"released": true, "desktop": desktop1})
	})
}

// links serves join tokens, links and host revocation: token "jtk_1",
// host "alpha" (host_a) linked, host "beta" removable.
func (f *fakeAPI) links(mux *http.ServeMux) {
	mux.HandleFunc("POST /api/v1/tokens", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var in struct {
			ExpiresIn string `json:"expires_in"`
			Uses      int    `json:"uses"`
			Note      string `json:"note"`
		}
		_ = json.Unmarshal(b, &in)
		if in.ExpiresIn == "99d" {
			reply(w, 400, map[string]any{"error": map[string]string{"code": "invalid", "field": "expires_in", "message": "expires_in 99d is out of range"}})
			return
		}
		f.mu.Lock()
		f.created = append(f.created, string(b))
		f.mu.Unlock()
		reply(w, 201, map[string]any{"token": "LJ1.jtk_1.s3cret.AAAA", "id": "jtk_1", "created": t0, "expires": time.Now().Add(24 * time.Hour),
			"max_uses": in.Uses, "uses": 0, "note": in.Note, "created_by": "admin"})
	})
	mux.HandleFunc("GET /api/v1/tokens", func(w http.ResponseWriter, r *http.Request) {
		reply(w, 200, items([]client.JoinToken{{ID: "jtk_1", State: "active", CreatedBy: "admin", Created: t0, Expires: t0.Add(time.Hour), MaxUses: 3, Uses: 1, Note: "rack 4"}}, ""))
	})
	mux.HandleFunc("DELETE /api/v1/tokens/{id}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("id") != "jtk_1" {
			apiErr(w, lobby.KindNotFound, 404, fmt.Sprintf("join token %q does not exist", r.PathValue("id")))
			return
		}
		w.WriteHeader(204)
	})
	mux.HandleFunc("GET /api/v1/links", func(w http.ResponseWriter, r *http.Request) {
		reply(w, 200, items([]map[string]any{
			{"kind": "leaf", "state": "up", "hub": "node1", "site_id": 1, "peer": "alpha", "host_id": "host_a", "address": "192.0.2.7:5000", "since": t0, "rtt_ms": 0.42, "ping": "1s",
				"upstreams": []map[string]any{{"url": "https://node1:8443", "ping": "1s", "auto_connect": true}, {"url": "https://node2:8443", "name_mask": "hub2.*", "auto_connect": false, "secure_only": true}}},
			{"kind": "leaf", "state": "refused", "hub": "node1", "site_id": 1, "peer": "gamma", "address": "192.0.2.8:5001", "since": t0, "rtt_ms": 0, "last_error": "the join token jtk_9 expired"},
			{"kind": "node", "state": "up", "hub": "node1", "site_id": 1, "peer": "node2", "peer_site_id": 2, "address": "https://192.0.2.20:8443", "since": t0, "rtt_ms": 0.25},
		}, ""))
	})
	mux.HandleFunc("POST /api/v1/hosts/{ref}/actions", func(w http.ResponseWriter, r *http.Request) {
		var in struct{ Action string }
		_ = json.NewDecoder(r.Body).Decode(&in)
		if ref := r.PathValue("ref"); (ref != "alpha" && ref != "host_a") || in.Action != "revoke" {
			apiErr(w, lobby.KindNotFound, 404, fmt.Sprintf("host %q does not exist", ref))
			return
		}
		reply(w, 200, lobby.Host{ID: "host_a", Name: "alpha", State: lobby.HostDown, Revoked: true})
	})
	mux.HandleFunc("DELETE /api/v1/hosts/{ref}", func(w http.ResponseWriter, r *http.Request) {
		switch ref := r.PathValue("ref"); ref {
		case "alpha":
			apiErr(w, lobby.KindConflict, 409, "host alpha is linked to this node: revoke it first")
		case "beta":
			w.WriteHeader(204)
		default:
			apiErr(w, lobby.KindNotFound, 404, fmt.Sprintf("host %q does not exist", ref))
		}
	})
}

func (f *fakeAPI) connect(w http.ResponseWriter, r *http.Request) {
	var in struct{ Pool string }
	_ = json.NewDecoder(r.Body).Decode(&in)
	switch in.Pool {
	case "demo":
	case "full":
		apiErr(w, lobby.KindConflict, 409, "pool full is exhausted")
		return
	default:
		apiErr(w, lobby.KindForbidden, 403, fmt.Sprintf("no policy gives you pool %q", in.Pool))
		return
	}
	f.mu.Lock()
	f.connects++
	ticket := fmt.Sprintf("T%d", f.connects)
	f.tickets[ticket] = true
	f.mu.Unlock()
	reply(w, 200, map[string]any{"desktop": desktop1, "assignment": map[string]any{"id": "asg_1", "desktop_id": desktop1.ID},
		"vnc_url": "/gateway/vnc?ticket=" + ticket, "ticket": ticket, "expires": time.Now().Add(time.Minute)})
}

// gateway redeems a ticket once and plays a tiny RFB server: it sends the
// version greeting, then echoes.
func (f *fakeAPI) gateway(w http.ResponseWriter, r *http.Request) {
	t := r.URL.Query().Get("ticket")
	f.mu.Lock()
	ok := f.tickets[t]
	delete(f.tickets, t)
	f.mu.Unlock()
	if !ok {
		apiErr(w, lobby.KindNotFound, 404, "ticket used or expired")
		return
	}
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{"binary"}})
	if err != nil {
		return
	}
	conn := websocket.NetConn(r.Context(), ws, websocket.MessageBinary)
	defer conn.Close()
	io.WriteString(conn, "RFB 003.008\n")
	io.Copy(conn, conn)
}

func (f *fakeAPI) snapshot() (connects int, released, actions, created []string, passwords map[string]string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	pw := map[string]string{}
	for k, v := range f.password {
		pw[k] = v
	}
	return f.connects, append([]string(nil), f.released...), append([]string(nil), f.actions...), append([]string(nil), f.created...), pw
}

// contains reports whether s holds every part.
func contains(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}
