package web

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"lobby/internal/httpjson"
	"lobby/internal/lobby"
	"lobby/internal/manage"
	"lobby/internal/store"
)

// desktopRow is one desktop of the list with the names its IDs stand for.
type desktopRow struct {
	Desktop  lobby.Desktop
	Pool     string
	Host     string
	Assignee string
}

type deskListData struct {
	List   paged[desktopRow]
	Pools  []lobby.Pool
	Hosts  []lobby.Host
	States []lobby.PowerState
}

func (s *Server) allPools(ctx context.Context) ([]lobby.Pool, error) {
	return store.All(func(o store.ListOptions) ([]lobby.Pool, error) { return s.Store.ListPools(ctx, o) },
		func(p lobby.Pool) string { return p.ID })
}

func (s *Server) allHosts(ctx context.Context) ([]lobby.Host, error) {
	return store.All(func(o store.ListOptions) ([]lobby.Host, error) { return s.Store.ListHosts(ctx, o) },
		func(h lobby.Host) string { return h.ID })
}

func (s *Server) allDesktops(ctx context.Context, f store.DesktopFilter) ([]lobby.Desktop, error) {
	return store.All(func(o store.ListOptions) ([]lobby.Desktop, error) { return s.Store.ListDesktops(ctx, f, o) },
		func(d lobby.Desktop) string { return d.ID })
}

func powerStates() []lobby.PowerState {
	out := make([]lobby.PowerState, 0, len(powerOrder))
	for _, p := range powerOrder {
		out = append(out, p.State)
	}
	return out
}

// desktopsPage lists desktops filtered by pool, host, power state,
// assigned or free, and a part of the name. The store filters what it
// can; the rest is filtered here, on a list read whole (see sortPage).
func (s *Server) desktopsPage(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	lq := listQueryOf(r, "name")
	pools, err := s.allPools(ctx)
	if err != nil {
		return err
	}
	hosts, err := s.allHosts(ctx)
	if err != nil {
		return err
	}
	poolName, hostName := map[string]string{}, map[string]string{}
	f := store.DesktopFilter{Power: lobby.PowerState(lq.Get("power"))}
	for _, p := range pools {
		poolName[p.ID] = p.Name
		if p.Name == lq.Get("pool") {
			f.PoolID = p.ID
		}
	}
	for _, h := range hosts {
		hostName[h.ID] = h.Name
		if h.Name == lq.Get("host") {
			f.HostID = h.ID
		}
	}
	data := deskListData{Pools: pools, Hosts: hosts, States: powerStates()}
	var desks []lobby.Desktop
	// A pool or host filter naming nothing known matches nothing.
	if (lq.Get("pool") == "" || f.PoolID != "") && (lq.Get("host") == "" || f.HostID != "") {
		if desks, err = s.allDesktops(ctx, f); err != nil {
			return err
		}
	}
	rows := make([]desktopRow, 0, len(desks))
	name := strings.ToLower(strings.TrimSpace(lq.Get("q")))
	for _, d := range desks {
		switch {
		case lq.Get("assigned") == "yes" && d.AssignedTo == "",
			lq.Get("assigned") == "no" && d.AssignedTo != "",
			name != "" && !strings.Contains(strings.ToLower(d.Name), name):
			continue
		}
		rows = append(rows, desktopRow{Desktop: d, Pool: poolName[d.PoolID], Host: hostName[d.HostID]})
	}
	data.List = sortPage(rows, lq, map[string]func(desktopRow) string{
		"name":    func(d desktopRow) string { return d.Desktop.Name },
		"pool":    func(d desktopRow) string { return d.Pool },
		"host":    func(d desktopRow) string { return d.Host },
		"power":   func(d desktopRow) string { return string(d.Desktop.Power) },
		"updated": func(d desktopRow) string { return d.Desktop.Updated.UTC().Format("20060102150405.000") },
	})
	// Only the page shown needs its assignees' names.
	names := map[string]string{}
	for i := range data.List.Items {
		row := &data.List.Items[i]
		if id := row.Desktop.AssignedTo; id != "" {
			if _, ok := names[id]; !ok {
				names[id] = s.username(ctx, id)
			}
			row.Assignee = names[id]
		}
	}
	return s.render(w, r, http.StatusOK, "admin_desktops", "Desktops", data)
}

// username names a user ID, or gives the ID when the user is gone.
func (s *Server) username(ctx context.Context, id string) string {
	if u, err := s.Store.GetUser(ctx, id); err == nil {
		return u.Username
	}
	return id
}

type deskData struct {
	Desktop    *lobby.Desktop
	Host       *lobby.Host
	Pool       *lobby.Pool
	User       *lobby.User
	Assignment *lobby.Assignment
	Jobs       []jobRow
	JobsLimit  int
	Actions    []string
	Form       *form
}

// desktopJobScan is how many of the newest jobs the desktop page looks
// through for the desktop's own (the queue cannot filter by argument).
const desktopJobScan = 200

func (s *Server) deskData(r *http.Request, id string, f *form) (*deskData, error) {
	ctx := r.Context()
	d, err := s.Manage.Desktop(ctx, id)
	if err != nil {
		return nil, err
	}
	data := &deskData{Desktop: d, Form: f, Actions: manage.Actions, JobsLimit: desktopJobScan}
	if h, err := s.Store.GetHost(ctx, d.HostID); err == nil {
		data.Host = h
	}
	if d.PoolID != "" {
		if p, err := s.Store.GetPool(ctx, d.PoolID); err == nil {
			data.Pool = p
		}
	}
	if d.AssignedTo != "" {
		if u, err := s.Store.GetUser(ctx, d.AssignedTo); err == nil {
			data.User = u
		}
		as, err := s.Store.ListAssignments(ctx, store.AssignmentFilter{DesktopID: d.ID})
		if err != nil {
			return nil, err
		}
		if len(as) > 0 {
			data.Assignment = &as[0]
		}
	}
	if s.Queue != nil {
		rows, err := s.jobRows(r, jobsQuery{Limit: desktopJobScan})
		if err != nil {
			return nil, err
		}
		for _, j := range rows {
			if j.DesktopID == d.ID && len(data.Jobs) < 10 {
				data.Jobs = append(data.Jobs, j)
			}
		}
	}
	return data, nil
}

func (s *Server) desktopPageAdmin(w http.ResponseWriter, r *http.Request) error {
	data, err := s.deskData(r, r.PathValue("id"), newForm())
	if err != nil {
		return err
	}
	return s.render(w, r, http.StatusOK, "admin_desktop", "Desktop "+data.Desktop.Name, data)
}

// desktopLive is the live part of the desktop page (its state and its
// jobs); htmx polls it so an action's progress shows without reloading.
func (s *Server) desktopLive(w http.ResponseWriter, r *http.Request) error {
	data, err := s.deskData(r, r.PathValue("id"), newForm())
	if err != nil {
		return err
	}
	return s.fragment(w, r, "admin_desktop", "live", data)
}

// desktopFormFailed shows the desktop page again with err next to the
// field at fault, or returns err for an error page when it is no form's.
func (s *Server) desktopFormFailed(w http.ResponseWriter, r *http.Request, f *form, err error) error {
	if !formError(err) {
		return err
	}
	f.Fail(err)
	data, derr := s.deskData(r, r.PathValue("id"), f)
	if derr != nil {
		return derr
	}
	return s.render(w, r, httpjson.Status(err), "admin_desktop", "Desktop "+data.Desktop.Name, data)
}

func (s *Server) desktopAction(w http.ResponseWriter, r *http.Request) error {
	f, err := parseForm(w, r)
	if err != nil {
		return err
	}
	id, action := r.PathValue("id"), r.PostFormValue("action")
	d, err := s.Manage.Desktop(r.Context(), id)
	if err != nil {
		return err
	}
	job, err := s.Manage.DesktopAction(r.Context(), s.actor(r), id, action)
	if err != nil {
		return s.desktopFormFailed(w, r, f, err)
	}
	msg := "Desktop " + d.Name + ": " + action + " requested (job " + job.ID + ")."
	if action == "delete" {
		return s.redirectBack(w, r, "/admin/desktops", msg)
	}
	return s.redirectBack(w, r, "/admin/desktops/"+url.PathEscape(id), msg)
}

func (s *Server) desktopAssign(w http.ResponseWriter, r *http.Request) error {
	f, err := parseForm(w, r)
	if err != nil {
		return err
	}
	id, user := r.PathValue("id"), strings.TrimSpace(r.PostFormValue("user"))
	if user == "" {
		return s.desktopFormFailed(w, r, f, lobby.FieldErrorf("user", "enter the username to give this desktop to"))
	}
	if _, err := s.Manage.AssignDesktop(r.Context(), s.actor(r), id, user); err != nil {
		return s.desktopFormFailed(w, r, f, err)
	}
	return s.redirectBack(w, r, "/admin/desktops/"+url.PathEscape(id), "Desktop assigned to "+user+".")
}

func (s *Server) desktopUnassign(w http.ResponseWriter, r *http.Request) error {
	f, err := parseForm(w, r)
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	if err := s.Manage.UnassignDesktop(r.Context(), s.actor(r), id); err != nil {
		return s.desktopFormFailed(w, r, f, err)
	}
	return s.redirectBack(w, r, "/admin/desktops/"+url.PathEscape(id), "Desktop unassigned: it is back in its pool.")
}

// parseForm reads a posted form (bounded) and keeps what was typed.
func parseForm(w http.ResponseWriter, r *http.Request) (*form, error) {
	if r.PostForm == nil {
		r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	}
	if err := r.ParseForm(); err != nil {
		return nil, lobby.Errorf(lobby.KindInvalid, "the form could not be read: reload the page and try again")
	}
	return formOf(r), nil
}
