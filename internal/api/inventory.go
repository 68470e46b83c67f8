package api

import (
	"fmt"
	"net/http"
	"strconv"

	"lobby/internal/httpjson"
	"lobby/internal/jobs"
	"lobby/internal/lobby"
	"lobby/internal/store"
)

func (s *Server) listDesktops(w http.ResponseWriter, r *http.Request) error {
	opt, err := page(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	f := store.DesktopFilter{HostID: q.Get("host"), AssignedTo: q.Get("assigned_to"), Power: lobby.PowerState(q.Get("power"))}
	if ref := q.Get("pool"); ref != "" {
		p, err := s.manager().Pool(r.Context(), ref)
		if err != nil {
			return err
		}
		f.PoolID = p.ID
	}
	ds, err := s.Store.ListDesktops(r.Context(), f, opt)
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, paged(ds, opt, func(d lobby.Desktop) string { return d.ID }))
	return nil
}

func (s *Server) getDesktop(w http.ResponseWriter, r *http.Request) error {
	d, err := s.manager().Desktop(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, d)
	return nil
}

type actionInput struct {
	Action string `json:"action"`
	User   string `json:"user,omitempty"` // for assign
}

type jobView struct {
	Job jobs.Job `json:"job"`
}

// desktopAction runs a power action (202 with its job), or assigns and
// unassigns by hand (200).
func (s *Server) desktopAction(w http.ResponseWriter, r *http.Request) error {
	var in actionInput
	if err := httpjson.Decode(w, r, &in); err != nil {
		return err
	}
	m, id := s.manager(), r.PathValue("id")
	switch in.Action {
	case "assign":
		as, err := m.AssignDesktop(r.Context(), actor(r), id, in.User)
		if err != nil {
			return err
		}
		httpjson.Write(w, http.StatusOK, as)
		return nil
	case "unassign":
		if err := m.UnassignDesktop(r.Context(), actor(r), id); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	job, err := m.DesktopAction(r.Context(), actor(r), id, in.Action)
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusAccepted, jobView{Job: job})
	return nil
}

func (s *Server) listHosts(w http.ResponseWriter, r *http.Request) error {
	opt, err := page(r)
	if err != nil {
		return err
	}
	hs, err := s.Store.ListHosts(r.Context(), opt)
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, paged(hs, opt, func(h lobby.Host) string { return h.ID }))
	return nil
}

func (s *Server) getHost(w http.ResponseWriter, r *http.Request) error {
	h, err := s.Store.GetHost(r.Context(), r.PathValue("id"))
	if err != nil {
		return storeErr(err, fmt.Sprintf("host %q", r.PathValue("id")))
	}
	httpjson.Write(w, http.StatusOK, h)
	return nil
}

func (s *Server) listJobs(w http.ResponseWriter, r *http.Request) error {
	opt, err := page(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	site, err := siteParam(q.Get("site"))
	if err != nil {
		return err
	}
	js, err := s.Queue.List(r.Context(), jobs.ListOptions{State: q.Get("state"), Kind: q.Get("kind"), Site: site, After: opt.After, Limit: opt.Limit})
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, paged(js, opt, func(j jobs.Job) string { return j.ID }))
	return nil
}

// jobAction retries or cancels a job.
func (s *Server) jobAction(w http.ResponseWriter, r *http.Request) error {
	var in actionInput
	if err := httpjson.Decode(w, r, &in); err != nil {
		return err
	}
	var (
		j   jobs.Job
		err error
	)
	switch in.Action {
	case "retry":
		j, err = s.manager().RetryJob(r.Context(), actor(r), r.PathValue("id"))
	case "cancel":
		j, err = s.manager().CancelJob(r.Context(), actor(r), r.PathValue("id"))
	default:
		err = lobby.FieldErrorf("action", "action %q is not valid: use retry or cancel", in.Action)
	}
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, j)
	return nil
}

func (s *Server) getJob(w http.ResponseWriter, r *http.Request) error {
	j, err := s.Queue.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, j)
	return nil
}

func (s *Server) listAudit(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	opt, err := page(r)
	if err != nil {
		return err
	}
	f := store.AuditFilter{Query: q.Get("q"), Limit: opt.Limit}
	if b := q.Get("before"); b != "" {
		if f.Before, err = strconv.ParseInt(b, 10, 64); err != nil || f.Before < 1 {
			return lobby.Errorf(lobby.KindInvalid, "before %q is not an audit event ID", b)
		}
	}
	evs, err := s.Store.ListAudit(r.Context(), f)
	if err != nil {
		return err
	}
	l := list[lobby.AuditEvent]{Items: evs}
	if l.Items == nil {
		l.Items = []lobby.AuditEvent{}
	}
	if len(evs) == opt.Limit {
		l.Next = strconv.FormatInt(evs[len(evs)-1].ID, 10)
	}
	httpjson.Write(w, http.StatusOK, l)
	return nil
}
