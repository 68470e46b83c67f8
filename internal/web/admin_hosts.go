package web

import (
	"errors"
	"net/http"
	"strconv"

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
	})
	return s.render(w, r, http.StatusOK, "admin_hosts", "Hosts", p)
}

type hostData struct {
	Host     *lobby.Host
	Desktops []desktopRow
	ByState  []segment
}

func (s *Server) hostPage(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	id := r.PathValue("id")
	h, err := s.Store.GetHost(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		h, err = s.Store.GetHostByName(ctx, id)
	}
	if err != nil {
		return manage.StoreErr(err, "host "+strconv.Quote(id))
	}
	desks, err := s.allDesktops(ctx, store.DesktopFilter{HostID: h.ID})
	if err != nil {
		return err
	}
	pools, err := s.allPools(ctx)
	if err != nil {
		return err
	}
	poolName := map[string]string{}
	for _, p := range pools {
		poolName[p.ID] = p.Name
	}
	data := hostData{Host: h}
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
	return s.render(w, r, http.StatusOK, "admin_host", "Host "+h.Name, data)
}
