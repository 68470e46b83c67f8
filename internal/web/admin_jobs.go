package web

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"

	"lobby/internal/jobs"
	"lobby/internal/lobby"
	"lobby/internal/manage"
)

// jobStates are the queue's job states in the order the filter lists them.
var jobStates = []string{"available", "scheduled", "running", "retryable", "pending", "completed", "cancelled", "discarded"}

// jobKinds are the kinds of job this node enqueues.
var jobKinds = []string{jobs.PowerArgs{}.Kind(), jobs.ProvisionArgs{}.Kind()}

// jobRow is one job with the desktop it is about.
type jobRow struct {
	Job       jobs.Job
	DesktopID string
	Desktop   string // its name, or its ID when it is gone
	Op        string
	CanRetry  bool
	CanCancel bool
}

func jobRowOf(j jobs.Job) jobRow {
	var args struct {
		DesktopID string `json:"desktop_id"`
		Op        string `json:"op"`
	}
	_ = json.Unmarshal(j.Args, &args)
	row := jobRow{Job: j, DesktopID: args.DesktopID, Desktop: args.DesktopID, Op: args.Op}
	switch j.State {
	case "discarded", "cancelled", "retryable", "scheduled":
		row.CanRetry = true
	}
	switch j.State {
	case "available", "scheduled", "running", "retryable", "pending":
		row.CanCancel = true
	}
	return row
}

// jobsQuery filters and pages the job list (newest first; After is the
// last job ID of the page before).
type jobsQuery struct {
	State, Kind, After string
	Limit              int
}

func (q jobsQuery) values() url.Values {
	v := url.Values{}
	for k, x := range map[string]string{"state": q.State, "kind": q.Kind, "after": q.After} {
		if x != "" {
			v.Set(k, x)
		}
	}
	return v
}

func (s *Server) jobRows(r *http.Request, q jobsQuery) ([]jobRow, error) {
	js, err := s.Queue.List(r.Context(), jobs.ListOptions{State: q.State, Kind: q.Kind, After: q.After, Limit: q.Limit})
	if err != nil {
		return nil, err
	}
	rows := make([]jobRow, 0, len(js))
	for _, j := range js {
		rows = append(rows, jobRowOf(j))
	}
	return rows, nil
}

type jobsData struct {
	Jobs   []jobRow
	Query  jobsQuery
	Counts map[string]int
	States []string
	Kinds  []string
	// Self is this view's query (for the live refresh); Older pages on;
	// Newest goes back to the first page.
	Self, Older, Newest url.Values
}

const jobsPerPage = 50

func (s *Server) jobsData(r *http.Request) (*jobsData, error) {
	ctx := r.Context()
	q := r.URL.Query()
	jq := jobsQuery{State: q.Get("state"), Kind: q.Get("kind"), After: q.Get("after"), Limit: jobsPerPage}
	if jq.State != "" && !slices.Contains(jobStates, jq.State) {
		return nil, lobby.Errorf(lobby.KindInvalid, "job state %q is not valid: use one of the states listed", jq.State)
	}
	rows, err := s.jobRows(r, jq)
	if err != nil {
		return nil, err
	}
	s.nameDesktops(ctx, rows)
	counts, err := s.Queue.Counts(ctx)
	if err != nil {
		return nil, err
	}
	d := &jobsData{Jobs: rows, Query: jq, Counts: counts, States: jobStates, Kinds: jobKinds, Self: jq.values()}
	newest := jq
	newest.After = ""
	d.Newest = newest.values()
	if len(rows) == jq.Limit {
		older := jq
		older.After = rows[len(rows)-1].Job.ID
		d.Older = older.values()
	}
	return d, nil
}

// nameDesktops puts the desktops' names on the rows.
func (s *Server) nameDesktops(ctx context.Context, rows []jobRow) {
	names := map[string]string{}
	for i := range rows {
		id := rows[i].DesktopID
		if id == "" {
			continue
		}
		if _, ok := names[id]; !ok {
			names[id] = id
			if d, err := s.Store.GetDesktop(ctx, id); err == nil {
				names[id] = d.Name
			}
		}
		rows[i].Desktop = names[id]
	}
}

func (s *Server) jobsPage(w http.ResponseWriter, r *http.Request) error {
	d, err := s.jobsData(r)
	if err != nil {
		return err
	}
	return s.render(w, r, http.StatusOK, "admin_jobs", "Jobs", d)
}

// jobsFragment is the job table alone: htmx polls it so progress shows
// without reloading the page.
func (s *Server) jobsFragment(w http.ResponseWriter, r *http.Request) error {
	d, err := s.jobsData(r)
	if err != nil {
		return err
	}
	return s.fragment(w, r, "admin_jobs", "jobs", d)
}

func (s *Server) jobRetry(w http.ResponseWriter, r *http.Request) error {
	return s.jobControl(w, r, s.Manage.RetryJob)
}

func (s *Server) jobCancel(w http.ResponseWriter, r *http.Request) error {
	return s.jobControl(w, r, s.Manage.CancelJob)
}

func (s *Server) jobControl(w http.ResponseWriter, r *http.Request, op func(context.Context, manage.Actor, string) (jobs.Job, error)) error {
	if _, err := parseForm(w, r); err != nil {
		return err
	}
	j, err := op(r.Context(), s.actor(r), r.PathValue("id"))
	if err != nil {
		return err
	}
	back := safeNext(r.PostFormValue("back"))
	if back == "/" {
		back = "/admin/jobs"
	}
	return s.redirectBack(w, r, back, "Job "+j.ID+" ("+j.Kind+") is now "+j.State+".")
}
