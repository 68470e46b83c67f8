package api

import (
	"net/http"
	"strconv"

	"lobby/internal/httpjson"
	"lobby/internal/lobby"
	"lobby/internal/manage"
)

// siteParam reads the site query parameter ("" is 0: every site).
func siteParam(v string) (int, error) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 65535 {
		return 0, lobby.Errorf(lobby.KindInvalid, "site %q is not a site ID: give a number from 1 to 65535", v)
	}
	return n, nil
}

// siteJobsAction reassigns or deletes the jobs of a site whose node is
// gone: {"action": "reassign", "site": N, "to_site": M} (to_site
// optional) or {"action": "delete", "site": N}.
func (s *Server) siteJobsAction(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Action string `json:"action"`
		Site   int    `json:"site"`
		ToSite int    `json:"to_site"`
	}
	if err := httpjson.Decode(w, r, &in); err != nil {
		return err
	}
	var (
		out manage.SiteJobs
		err error
	)
	switch in.Action {
	case "reassign":
		out, err = s.manager().ReassignJobs(r.Context(), actor(r), in.Site, in.ToSite)
	case "delete":
		if in.ToSite != 0 {
			return lobby.FieldErrorf("to_site", "delete takes no to_site: it drops the jobs; to move them use reassign")
		}
		out, err = s.manager().DeleteSiteJobs(r.Context(), actor(r), in.Site)
	default:
		err = lobby.FieldErrorf("action", "action %q is not valid: use reassign or delete (a job's own retry and cancel are POST /api/v1/jobs/{id}/actions)", in.Action)
	}
	if err != nil {
		return err
	}
	if out.Jobs == nil {
		out.Jobs = []string{}
	}
	httpjson.Write(w, http.StatusOK, out)
	return nil
}
