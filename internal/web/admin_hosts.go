package web

import (
	"errors"
	"net/http"
	"strconv"

	"lobby/internal/httpjson"
	"lobby/internal/link"
	"lobby/internal/lobby"
	"lobby/internal/manage"
	"lobby/internal/store"
)

// hostRow is a host with how many desktops it runs.
type hostRow struct {
	Host     lobby.Host
	Desktops int
	Running  int
}

func (s *Server) hostsPage(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	hosts, err := s.allHosts(ctx)
	if err != nil {
		return err
	}
	desks, err := s.allDesktops(ctx, store.DesktopFilter{})
	if err != nil {
		return err
	}
	total, running := map[string]int{}, map[string]int{}
	for _, d := range desks {
		total[d.HostID]++
		if d.Power == lobby.PowerRunning {
			running[d.HostID]++
		}
	}
	rows := make([]hostRow, 0, len(hosts))
	for _, h := range hosts {
		rows = append(rows, hostRow{Host: h, Desktops: total[h.ID], Running: running[h.ID]})
	}
	itoa := strconv.Itoa
	p := sortPage(rows, listQueryOf(r, "name"), map[string]func(hostRow) string{
		"name":     func(h hostRow) string { return h.Host.Name },
		"state":    func(h hostRow) string { return string(h.Host.State) },
		"provider": func(h hostRow) string { return h.Host.Provider },
		"site":     func(h hostRow) string { return itoa(h.Host.SiteID) },
		"desktops": func(h hostRow) string { return itoa(h.Desktops) },
		"seen":     func(h hostRow) string { return h.Host.LastSeen.UTC().Format("20060102150405.000") },
		"agent":    func(h hostRow) string { return h.Host.AgentVersion },
		"address":  func(h hostRow) string { return h.Host.Address },
		"cpu":      func(h hostRow) string { return itoa(int(h.Host.CPUPercent * 10)) },
		"memory":   func(h hostRow) string { return strconv.FormatInt(h.Host.MemUsed, 10) },
	})
	return s.render(w, r, http.StatusOK, "admin_hosts", "Hosts", p)
}

type hostData struct {
	Host     *lobby.Host
	Link     *link.Status // its link to this node, when up
	Desktops []desktopRow
	ByState  []segment
	Form     *form // why revoke or remove was refused
}

func (s *Server) hostPage(w http.ResponseWriter, r *http.Request) error {
	return s.renderHost(w, r, http.StatusOK, r.PathValue("id"), newForm())
}

// renderHost draws a host's page (ref is its ID or name) with status and
// the errors in f.
func (s *Server) renderHost(w http.ResponseWriter, r *http.Request, status int, ref string, f *form) error {
	ctx := r.Context()
	h, err := s.Store.GetHost(ctx, ref)
	if errors.Is(err, store.ErrNotFound) {
		h, err = s.Store.GetHostByName(ctx, ref)
	}
	if err != nil {
		return manage.StoreErr(err, "host "+strconv.Quote(ref))
	}
	desks, err := s.allDesktops(ctx, store.DesktopFilter{HostID: h.ID})
	if err != nil {
		return err
	}
	pools, err := s.allPools(ctx)
	if err != nil {
		return err
	}
	ls, err := s.Manage.Links(ctx, s.actor(r))
	if err != nil {
		return err
	}
	poolName := map[string]string{}
	for _, p := range pools {
		poolName[p.ID] = p.Name
	}
	data := hostData{Host: h, Link: hostLink(ls, h.ID), Form: f}
	byState := map[lobby.PowerState]int{}
	for _, d := range desks {
		byState[d.Power]++
		data.Desktops = append(data.Desktops, desktopRow{Desktop: d, Pool: poolName[d.PoolID], Host: h.Name})
	}
	var parts []segment
	for _, p := range powerOrder {
		parts = append(parts, segment{Label: string(p.State), N: byState[p.State], Color: p.Color})
	}
	data.ByState = stack(parts)
	sortPage(data.Desktops, listQuery{Sort: "name", Page: 1, Per: len(desks) + 1}, map[string]func(desktopRow) string{
		"name": func(d desktopRow) string { return d.Desktop.Name },
	})
	return s.render(w, r, status, "admin_host", "Host "+h.Name, data)
}

// hostRevoke revokes a host's certificate, which cuts its link at once.
func (s *Server) hostRevoke(w http.ResponseWriter, r *http.Request) error {
	if _, err := parseForm(w, r); err != nil {
		return err
	}
	h, err := s.Manage.RevokeHost(r.Context(), s.actor(r), r.PathValue("id"))
	if err != nil {
		return s.hostActionFailed(w, r, err)
	}
	return s.redirectBack(w, r, "/admin/hosts/"+h.ID, "Host "+h.Name+" revoked: its link is cut and it must join again with a new token.")
}

// hostRemove deletes a host that is not linked.
func (s *Server) hostRemove(w http.ResponseWriter, r *http.Request) error {
	if _, err := parseForm(w, r); err != nil {
		return err
	}
	ref := r.PathValue("id")
	h, err := s.Manage.Host(r.Context(), ref)
	if err != nil {
		return err
	}
	if err := s.Manage.RemoveHost(r.Context(), s.actor(r), h.ID); err != nil {
		return s.hostActionFailed(w, r, err)
	}
	return s.redirectBack(w, r, "/admin/hosts", "Host "+h.Name+" removed.")
}

// hostActionFailed shows why revoke or remove was refused on the host's
// page; other errors are error pages.
func (s *Server) hostActionFailed(w http.ResponseWriter, r *http.Request, err error) error {
	if lobby.ErrorKind(err) != lobby.KindConflict {
		return err
	}
	f := newForm()
	f.Fail(err)
	return s.renderHost(w, r, httpjson.Status(err), r.PathValue("id"), f)
}
