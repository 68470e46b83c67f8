package api

import (
	"net/http"
	"time"

	"lobby/internal/assign"
	"lobby/internal/httpjson"
	"lobby/internal/lobby"
	"lobby/internal/store"
)

type loginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

type loginResponse struct {
	Token   string      `json:"token"`
	Expires time.Time   `json:"expires"`
	User    *lobby.User `json:"user"`
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) error {
	var req loginRequest
	if err := httpjson.Decode(w, r, &req); err != nil {
		return err
	}
	if req.Username == "" || req.Password == "" {
		return lobby.Errorf(lobby.KindInvalid, "username and password are required")
	}
	addr := remote(r)
	if err := s.Throttle.Check(req.Username, addr); err != nil {
		_ = s.Store.AppendAudit(r.Context(), &lobby.AuditEvent{At: s.Auth.Now(), Actor: req.Username, Action: "user.login_throttled", Target: req.Username, Detail: lobby.ErrorMessage(err), Remote: addr})
		w.Header().Set("Retry-After", "60")
		return err
	}
	secret, tok, u, err := s.Auth.Login(r.Context(), req.Username, req.Password)
	if err != nil {
		switch lobby.ErrorKind(err) {
		case lobby.KindUnauthorized, lobby.KindForbidden:
			s.Throttle.Fail(req.Username, addr)
			_ = s.Store.AppendAudit(r.Context(), &lobby.AuditEvent{At: s.Auth.Now(), Actor: req.Username, Action: "user.login_failed", Target: req.Username, Remote: addr})
		case lobby.KindMaintenance:
			_ = s.Store.AppendAudit(r.Context(), &lobby.AuditEvent{At: s.Auth.Now(), Actor: req.Username, Action: "user.login_refused", Target: req.Username, Detail: "maintenance mode", Remote: addr})
		}
		return err
	}
	s.Throttle.Succeed(req.Username)
	if err := s.Store.AppendAudit(r.Context(), &lobby.AuditEvent{At: s.Auth.Now(), Actor: u.Username, Action: "user.login", Target: u.ID, Remote: addr}); err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, loginResponse{Token: secret, Expires: tok.Expires, User: u})
	return nil
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) error {
	if err := s.Auth.RevokeToken(r.Context(), tokenOf(r)); err != nil {
		return storeErr(err, "token")
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) me(w http.ResponseWriter, r *http.Request) error {
	httpjson.Write(w, http.StatusOK, userOf(r))
	return nil
}

type connectRequest struct {
	Pool string `json:"pool"`
}

type connectResponse struct {
	Desktop    *lobby.Desktop    `json:"desktop"`
	Assignment *lobby.Assignment `json:"assignment"`
	VNCURL     string            `json:"vnc_url"`
	Ticket     string            `json:"ticket"`
	Expires    time.Time         `json:"expires"`
}

func (s *Server) connect(w http.ResponseWriter, r *http.Request) error {
	var req connectRequest
	if err := httpjson.Decode(w, r, &req); err != nil {
		return err
	}
	if req.Pool == "" {
		return lobby.Errorf(lobby.KindInvalid, "pool is required: name the pool to connect to")
	}
	u := userOf(r)
	// The ticket is issued in the assignment's transaction when the
	// desktop runs, and after it has started otherwise.
	var ticket string
	var exp time.Time
	g, err := s.Assign.ConnectWith(r.Context(), u, req.Pool, func(tx store.Queries, g *assign.Grant) (err error) {
		ticket, exp, err = s.Auth.IssueTicketIn(r.Context(), tx, u.ID, g.Desktop.ID)
		return err
	})
	if err != nil {
		return err
	}
	if !g.Reused {
		s.assigns.Inc()
	}
	if ticket == "" {
		if ticket, exp, err = s.Auth.IssueTicket(r.Context(), u.ID, g.Desktop.ID); err != nil {
			return err
		}
	}
	httpjson.Write(w, http.StatusOK, connectResponse{Desktop: g.Desktop, Assignment: g.Assignment, VNCURL: "/gateway/vnc?ticket=" + ticket, Ticket: ticket, Expires: exp})
	return nil
}

type releaseRequest struct {
	Desktop string `json:"desktop"`
}

type releaseResponse struct {
	Released bool           `json:"released"`
	Desktop  *lobby.Desktop `json:"desktop"`
}

func (s *Server) release(w http.ResponseWriter, r *http.Request) error {
	var req releaseRequest
	if err := httpjson.Decode(w, r, &req); err != nil {
		return err
	}
	if req.Desktop == "" {
		return lobby.Errorf(lobby.KindInvalid, "desktop is required: give the desktop's ID")
	}
	released, d, err := s.Assign.Logoff(r.Context(), userOf(r), req.Desktop)
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, releaseResponse{Released: released, Desktop: d})
	return nil
}

func (s *Server) listAssignments(w http.ResponseWriter, r *http.Request) error {
	u := userOf(r)
	f := store.AssignmentFilter{UserID: u.ID}
	if u.Role.Can(lobby.PermRead) {
		f.UserID = r.URL.Query().Get("user")
	}
	as, err := s.Store.ListAssignments(r.Context(), f)
	if err != nil {
		return err
	}
	if as == nil {
		as = []lobby.Assignment{}
	}
	httpjson.Write(w, http.StatusOK, list[lobby.Assignment]{Items: as})
	return nil
}

// offer is one pool a person may connect to, as the portal shows it.
type offer struct {
	Pool    *lobby.Pool       `json:"pool"`
	Policy  string            `json:"policy"`
	Mode    lobby.AssignMode  `json:"mode"`
	Counts  store.PoolCounts  `json:"counts"`
	Holding *lobby.Assignment `json:"holding,omitempty"`
}

// offers lists the pools the caller's policies give them (manage.Offers,
// as the portal shows them) and what the caller holds in each.
func (s *Server) offers(w http.ResponseWriter, r *http.Request) error {
	u := userOf(r)
	os, err := s.manager().Offers(r.Context(), u)
	if err != nil {
		return err
	}
	held, err := s.Store.ListAssignments(r.Context(), store.AssignmentFilter{UserID: u.ID})
	if err != nil {
		return err
	}
	out := make([]offer, 0, len(os))
	for _, o := range os {
		v := offer{Pool: o.Pool, Policy: o.Policy.Name, Mode: o.Policy.Mode, Counts: o.Counts}
		for i := range held {
			if held[i].PoolID == o.Pool.ID {
				v.Holding = &held[i]
			}
		}
		out = append(out, v)
	}
	httpjson.Write(w, http.StatusOK, list[offer]{Items: out})
	return nil
}
