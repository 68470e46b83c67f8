package web

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"lobby/internal/httpjson"
	"lobby/internal/lobby"
	"lobby/internal/manage"
	"lobby/internal/store"
)

// policyRow is a policy with its pools' names.
type policyRow struct {
	Policy lobby.Policy
	Pools  []string
}

// poolNames maps pool IDs to names.
func (s *Server) poolNames(ctx context.Context) (map[string]string, []lobby.Pool, error) {
	pools, err := s.allPools(ctx)
	if err != nil {
		return nil, nil, err
	}
	names := make(map[string]string, len(pools))
	for _, p := range pools {
		names[p.ID] = p.Name
	}
	return names, pools, nil
}

func namesOf(ids []string, names map[string]string) []string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if n, ok := names[id]; ok {
			out = append(out, n)
		} else {
			out = append(out, id+" (deleted)")
		}
	}
	return out
}

func (s *Server) allPolicies(ctx context.Context) ([]lobby.Policy, error) {
	return store.All(func(o store.ListOptions) ([]lobby.Policy, error) { return s.Store.ListPolicies(ctx, o) },
		func(p lobby.Policy) string { return p.ID })
}

func (s *Server) policiesPage(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	names, _, err := s.poolNames(ctx)
	if err != nil {
		return err
	}
	pols, err := s.allPolicies(ctx)
	if err != nil {
		return err
	}
	rows := make([]policyRow, 0, len(pols))
	for _, p := range pols {
		rows = append(rows, policyRow{Policy: p, Pools: namesOf(p.Pools, names)})
	}
	itoa := strconv.Itoa
	p := sortPage(rows, listQueryOf(r, "name"), map[string]func(policyRow) string{
		"name":     func(p policyRow) string { return p.Policy.Name },
		"priority": func(p policyRow) string { return itoa(p.Policy.Priority) },
		"mode":     func(p policyRow) string { return string(p.Policy.Mode) },
		"max":      func(p policyRow) string { return itoa(p.Policy.MaxDesktops) },
	})
	return s.render(w, r, http.StatusOK, "admin_policies", "Policies", p)
}

type policyFormData struct {
	Form   *form
	Policy *lobby.Policy // nil when creating
	Pools  []lobby.Pool  // every pool, for the checkboxes
	Names  []string      // the policy's pools by name (read-only view)
	Modes  []lobby.AssignMode
	Plans  []lobby.PowerAction
}

func (s *Server) policyFormData(ctx context.Context, p *lobby.Policy, f *form) (*policyFormData, error) {
	names, pools, err := s.poolNames(ctx)
	if err != nil {
		return nil, err
	}
	d := &policyFormData{Form: f, Policy: p, Pools: pools,
		Modes: []lobby.AssignMode{lobby.NonPersistent, lobby.Persistent},
		Plans: []lobby.PowerAction{lobby.PowerKeep, lobby.PowerStop, lobby.PowerSuspend}}
	if p != nil {
		d.Names = namesOf(p.Pools, names)
	}
	if f == nil {
		d.Form = policyFormOf(p, names)
	}
	return d, nil
}

// policyFormOf fills the form from a policy, its pools by name.
func policyFormOf(p *lobby.Policy, names map[string]string) *form {
	f := newForm()
	in := manage.PolicyInputOf(p)
	f.Values.Set("name", in.Name)
	for _, id := range in.Pools {
		if n, ok := names[id]; ok {
			f.Values.Add("pools", n)
		}
	}
	f.Values.Set("users", strings.Join(in.Users, ", "))
	f.Values.Set("groups", strings.Join(in.Groups, ", "))
	f.Values.Set("max_desktops", strconv.Itoa(in.MaxDesktops))
	f.Values.Set("mode", string(in.Mode))
	if in.Release.OnLogoff {
		f.Values.Set("on_logoff", "on")
	}
	f.Values.Set("disconnect_minutes", strconv.Itoa(in.Release.DisconnectMinutes))
	f.Values.Set("at_time", in.Release.AtTime)
	f.Values.Set("power_on_release", string(in.PowerPlan))
	f.Values.Set("priority", strconv.Itoa(in.Priority))
	return f
}

// policyInputOf reads the policy form; number errors are filed on f.
func policyInputOf(r *http.Request, f *form) manage.PolicyInput {
	return manage.PolicyInput{
		Name:        strings.TrimSpace(r.PostFormValue("name")),
		Pools:       r.PostForm["pools"],
		Users:       splitList(r.PostFormValue("users")),
		Groups:      splitList(r.PostFormValue("groups")),
		MaxDesktops: formInt(r, f, "max_desktops"),
		Mode:        lobby.AssignMode(r.PostFormValue("mode")),
		Release: lobby.ReleasePlan{
			OnLogoff:          r.PostFormValue("on_logoff") != "",
			DisconnectMinutes: formInt(r, f, "disconnect_minutes"),
			AtTime:            strings.TrimSpace(r.PostFormValue("at_time")),
		},
		PowerPlan: lobby.PowerAction(r.PostFormValue("power_on_release")),
		Priority:  formInt(r, f, "priority"),
	}
}

func (s *Server) policyNew(w http.ResponseWriter, r *http.Request) error {
	f := newForm()
	f.Values = url.Values{"max_desktops": {"1"}, "mode": {string(lobby.NonPersistent)}, "on_logoff": {"on"},
		"disconnect_minutes": {"0"}, "power_on_release": {string(lobby.PowerKeep)}, "priority": {"0"}}
	d, err := s.policyFormData(r.Context(), nil, f)
	if err != nil {
		return err
	}
	return s.render(w, r, http.StatusOK, "admin_policy", "New policy", d)
}

func (s *Server) policyCreate(w http.ResponseWriter, r *http.Request) error {
	f, err := parseForm(w, r)
	if err != nil {
		return err
	}
	in := policyInputOf(r, f)
	status := http.StatusBadRequest
	if !f.Failed() {
		p, err := s.Manage.CreatePolicy(r.Context(), s.actor(r), in)
		if err == nil {
			return s.redirectBack(w, r, "/admin/policies/"+url.PathEscape(pathRef(p.Name, p.ID)), "Policy "+p.Name+" created.")
		}
		if !formError(err) {
			return err
		}
		f.Fail(err)
		status = httpjson.Status(err)
	}
	d, err := s.policyFormData(r.Context(), nil, f)
	if err != nil {
		return err
	}
	return s.render(w, r, status, "admin_policy", "New policy", d)
}

func (s *Server) policyPage(w http.ResponseWriter, r *http.Request) error {
	p, err := s.Manage.Policy(r.Context(), r.PathValue("ref"))
	if err != nil {
		return err
	}
	d, err := s.policyFormData(r.Context(), p, nil)
	if err != nil {
		return err
	}
	return s.render(w, r, http.StatusOK, "admin_policy", "Policy "+p.Name, d)
}

func (s *Server) policyUpdate(w http.ResponseWriter, r *http.Request) error {
	f, err := parseForm(w, r)
	if err != nil {
		return err
	}
	in := policyInputOf(r, f)
	ref := r.PathValue("ref")
	status := http.StatusBadRequest
	if !f.Failed() {
		p, err := s.Manage.UpdatePolicy(r.Context(), s.actor(r), ref, func(cur *manage.PolicyInput) error {
			*cur = in
			return nil
		})
		if err == nil {
			return s.redirectBack(w, r, "/admin/policies/"+url.PathEscape(pathRef(p.Name, p.ID)), "Policy "+p.Name+" saved.")
		}
		if !formError(err) {
			return err
		}
		f.Fail(err)
		status = httpjson.Status(err)
	}
	p, err := s.Manage.Policy(r.Context(), ref)
	if err != nil {
		return err
	}
	d, err := s.policyFormData(r.Context(), p, f)
	if err != nil {
		return err
	}
	return s.render(w, r, status, "admin_policy", "Policy "+p.Name, d)
}

func (s *Server) policyDelete(w http.ResponseWriter, r *http.Request) error {
	if _, err := parseForm(w, r); err != nil {
		return err
	}
	p, err := s.Manage.Policy(r.Context(), r.PathValue("ref"))
	if err != nil {
		return err
	}
	if err := s.Manage.DeletePolicy(r.Context(), s.actor(r), p.ID); err != nil {
		return err
	}
	return s.redirectBack(w, r, "/admin/policies", "Policy "+p.Name+" deleted.")
}
