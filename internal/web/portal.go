package web

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"

	"lobby/internal/httpjson"
	"lobby/internal/lobby"
	"lobby/internal/store"
)

func (s *Server) home(w http.ResponseWriter, r *http.Request) error {
	target := "/desktops"
	if sessionOf(r).User.Role.Can(lobby.PermRead) {
		target = "/admin"
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
	return nil
}

// offerView is one pool on "My desktops".
type offerView struct {
	Pool    *lobby.Pool
	Policy  *lobby.Policy
	State   string // ready, starting, in-use, held, full
	Label   string // the state in words
	Desktop *lobby.Desktop
	Holding *lobby.Assignment
}

type desktopsData struct {
	Offers []offerView
	Error  string
	Origin string // this node's address, for the native client's command
	Banner string // the administrators' message (settings: portal.banner)
}

func origin(r *http.Request) string {
	scheme := "http"
	if isTLS(r) {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func (s *Server) offers(r *http.Request) ([]offerView, error) {
	u := sessionOf(r).User
	os, err := s.Manage.Offers(r.Context(), u)
	if err != nil {
		return nil, err
	}
	held, err := s.Store.ListAssignments(r.Context(), store.AssignmentFilter{UserID: u.ID})
	if err != nil {
		return nil, err
	}
	out := make([]offerView, 0, len(os))
	for _, o := range os {
		v := offerView{Pool: o.Pool, Policy: o.Policy}
		for i := range held {
			if held[i].PoolID == o.Pool.ID {
				v.Holding = &held[i]
			}
		}
		switch {
		case v.Holding != nil:
			d, err := s.Store.GetDesktop(r.Context(), v.Holding.DesktopID)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return nil, err
			}
			v.Desktop = d
			v.State, v.Label = "held", "Yours"
			if v.Holding.Connected {
				v.State, v.Label = "in-use", "In use elsewhere"
			} else if d != nil && d.Power != lobby.PowerRunning {
				v.State, v.Label = "starting", "Yours, "+string(d.Power)
			}
		case o.Counts.Free > 0:
			v.State, v.Label = "ready", "Ready"
		case o.Counts.Pending > 0:
			v.State, v.Label = "starting", "Starting"
		default:
			v.State, v.Label = "full", "All in use"
		}
		out = append(out, v)
	}
	return out, nil
}

func (s *Server) myDesktops(w http.ResponseWriter, r *http.Request) error {
	os, err := s.offers(r)
	if err != nil {
		return err
	}
	return s.render(w, r, http.StatusOK, "desktops", "My desktops", desktopsData{Offers: os, Origin: origin(r), Banner: s.banner(r.Context())})
}

// offersFragment is the live part of "My desktops", refreshed by htmx.
func (s *Server) offersFragment(w http.ResponseWriter, r *http.Request) error {
	os, err := s.offers(r)
	if err != nil {
		return err
	}
	return s.fragment(w, r, "desktops", "offers", desktopsData{Offers: os, Origin: origin(r)})
}

// connect gets the person a desktop from a pool, by the same code as
// POST /api/v1/connect, then opens the desktop page.
func (s *Server) connect(w http.ResponseWriter, r *http.Request) error {
	pool := r.PostFormValue("pool")
	if pool == "" {
		return lobby.Errorf(lobby.KindInvalid, "choose a pool to connect to")
	}
	g, err := s.Assign.Connect(r.Context(), sessionOf(r).User, pool)
	if err != nil {
		if k := lobby.ErrorKind(err); k == lobby.KindConflict || k == lobby.KindForbidden || k == lobby.KindUnavailable || k == lobby.KindNotFound {
			os, oerr := s.offers(r)
			if oerr != nil {
				return oerr
			}
			return s.render(w, r, httpjson.Status(err), "desktops", "My desktops", desktopsData{Offers: os, Error: lobby.ErrorMessage(err), Origin: origin(r), Banner: s.banner(r.Context())})
		}
		return err
	}
	http.Redirect(w, r, "/desktop/"+url.PathEscape(g.Desktop.ID), http.StatusSeeOther)
	return nil
}

// held returns the desktop id if the signed-in person holds it; anything
// else is "not found", so nobody learns about desktops that are not theirs.
func (s *Server) held(r *http.Request, id string) (*lobby.Desktop, *lobby.Assignment, error) {
	u := sessionOf(r).User
	gone := lobby.Errorf(lobby.KindNotFound, "this desktop is no longer yours: it was released or removed. Connect again from My desktops.")
	as, err := s.Store.ListAssignments(r.Context(), store.AssignmentFilter{UserID: u.ID, DesktopID: id})
	if err != nil {
		return nil, nil, err
	}
	if len(as) == 0 {
		return nil, nil, gone
	}
	d, err := s.Store.GetDesktop(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, gone
	}
	return d, &as[0], err
}

type desktopData struct {
	Desktop *lobby.Desktop
}

// desktopPage is the full-window desktop; its script asks for a console
// ticket and connects noVNC through the gateway.
func (s *Server) desktopPage(w http.ResponseWriter, r *http.Request) error {
	d, _, err := s.held(r, r.PathValue("id"))
	if err != nil {
		return err
	}
	return s.render(w, r, http.StatusOK, "desktop", d.Name, desktopData{Desktop: d})
}

type ticketAnswer struct {
	URL     string `json:"url"`
	Desktop string `json:"desktop"`
	Power   string `json:"power"`
}

type ticketError struct {
	Error string `json:"error"`
	Gone  bool   `json:"gone"` // the desktop is no longer the person's: stop reconnecting
}

// ticket issues a single-use console ticket for the page's script. It is
// asked again on every reconnect, so a network blip costs a new ticket,
// never the desktop.
func (s *Server) ticket(w http.ResponseWriter, r *http.Request) error {
	writeJSON := func(status int, v any) error {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(status)
		return json.NewEncoder(w).Encode(v)
	}
	d, _, err := s.held(r, r.PathValue("id"))
	if lobby.ErrorKind(err) == lobby.KindNotFound {
		return writeJSON(http.StatusGone, ticketError{Error: lobby.ErrorMessage(err), Gone: true})
	}
	if err != nil {
		return err
	}
	if d.Power != lobby.PowerRunning {
		return writeJSON(http.StatusServiceUnavailable, ticketError{Error: "your desktop is " + string(d.Power) + ": waiting for it to run"})
	}
	secret, _, err := s.Auth.IssueTicket(r.Context(), sessionOf(r).User.ID, d.ID)
	if err != nil {
		return err
	}
	return writeJSON(http.StatusOK, ticketAnswer{URL: "/gateway/vnc?ticket=" + url.QueryEscape(secret), Desktop: d.Name, Power: string(d.Power)})
}

// release logs off: it ends the session and runs the release plan, by the
// same code as POST /api/v1/release.
func (s *Server) release(w http.ResponseWriter, r *http.Request) error {
	released, d, err := s.Assign.Logoff(r.Context(), sessionOf(r).User, r.PathValue("id"))
	if err != nil {
		return err
	}
	msg := "You are logged off " + d.Name + "; it stays yours, as your policy says."
	if released {
		msg = "You are logged off and " + d.Name + " went back to its pool."
	}
	s.flash(w, r, msg)
	http.Redirect(w, r, "/desktops", http.StatusSeeOther)
	return nil
}

type accountData struct {
	Form *form
	Done bool
}

func (s *Server) account(w http.ResponseWriter, r *http.Request) error {
	return s.render(w, r, http.StatusOK, "account", "Your account", accountData{Form: newForm()})
}

func (s *Server) changePassword(w http.ResponseWriter, r *http.Request) error {
	f := formOf(r)
	u := sessionOf(r).User
	pw := r.PostFormValue("password")
	if pw != r.PostFormValue("password2") {
		f.Errors["password2"] = "the two passwords differ: type the same new password twice"
		return s.render(w, r, http.StatusBadRequest, "account", "Your account", accountData{Form: f})
	}
	if err := s.Throttle.Check(u.Username, remote(r)); err != nil {
		f.Errors["current"] = lobby.ErrorMessage(err)
		return s.render(w, r, http.StatusTooManyRequests, "account", "Your account", accountData{Form: f})
	}
	if _, err := s.Auth.CheckPassword(r.Context(), u.Username, r.PostFormValue("current")); err != nil {
		s.Throttle.Fail(u.Username, remote(r))
		f.Errors["current"] = "that is not your current password"
		return s.render(w, r, http.StatusBadRequest, "account", "Your account", accountData{Form: f})
	}
	if err := s.Manage.SetPassword(r.Context(), s.actor(r), u.ID, pw); err != nil {
		if lobby.ErrorKind(err) != lobby.KindInvalid {
			return err
		}
		f.Fail(err)
		return s.render(w, r, http.StatusBadRequest, "account", "Your account", accountData{Form: f})
	}
	return s.render(w, r, http.StatusOK, "account", "Your account", accountData{Form: newForm(), Done: true})
}
