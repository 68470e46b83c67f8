package web

import (
	"net/http"
	"slices"

	"lobby/internal/lobby"
	"lobby/internal/store"
)

// segment is one part of a stacked bar chart, in percent of its width.
type segment struct {
	Label string
	N     int
	X, W  float64
	Color string
}

// stack lays counts out as a stacked bar, in the order given, skipping
// zeros.
func stack(parts []segment) []segment {
	total := 0
	for _, p := range parts {
		total += p.N
	}
	var out []segment
	x := 0.0
	for _, p := range parts {
		if p.N == 0 || total == 0 {
			continue
		}
		p.X, p.W = x, float64(p.N)*100/float64(total)
		x += p.W
		out = append(out, p)
	}
	return out
}

// powerColors gives each desktop state a colour that reads on white and
// matches the badges.
var powerOrder = []struct {
	State lobby.PowerState
	Color string
}{
	{lobby.PowerRunning, "#2e8b57"}, {lobby.PowerStarting, "#d08c00"}, {lobby.PowerCreating, "#e0b040"},
	{lobby.PowerSuspended, "#7a6fb0"}, {lobby.PowerStopping, "#9aa5b1"}, {lobby.PowerStopped, "#5f6b78"},
	{lobby.PowerDeleting, "#c06070"}, {lobby.PowerError, "#b3261e"}, {lobby.PowerUnknown, "#b8c0ca"},
}

type dashboardData struct {
	Node       NodeInfo
	Version    string
	HostsUp    int
	HostsDown  int
	Desktops   int
	InUse      int
	ByState    []segment
	Pools      []poolRow
	PoolBars   map[string][]segment
	Sessions   int
	Jobs       map[string]int
	Attention  []string
	Audit      []lobby.AuditEvent
	JobsFailed int
}

func (s *Server) dashboardData(r *http.Request) (*dashboardData, error) {
	ctx := r.Context()
	d := &dashboardData{Node: s.Node, Version: s.Version, PoolBars: map[string][]segment{}}
	hosts, err := store.All(func(o store.ListOptions) ([]lobby.Host, error) { return s.Store.ListHosts(ctx, o) },
		func(h lobby.Host) string { return h.ID })
	if err != nil {
		return nil, err
	}
	for _, h := range hosts {
		if h.State == lobby.HostUp {
			d.HostsUp++
		} else {
			d.HostsDown++
		}
		switch {
		case h.Revoked:
			d.Attention = append(d.Attention, "Host "+h.Name+" is revoked: its agent is refused until it joins again with a new token (or remove the host).")
		case h.State != lobby.HostUp:
			d.Attention = append(d.Attention, "Host "+h.Name+" is down (last seen "+ago(h.LastSeen)+").")
		}
	}
	desks, err := store.All(func(o store.ListOptions) ([]lobby.Desktop, error) {
		return s.Store.ListDesktops(ctx, store.DesktopFilter{}, o)
	}, func(d lobby.Desktop) string { return d.ID })
	if err != nil {
		return nil, err
	}
	d.Desktops = len(desks)
	byState := map[lobby.PowerState]int{}
	for _, dk := range desks {
		byState[dk.Power]++
		if dk.AssignedTo != "" {
			d.InUse++
		}
		if dk.Power == lobby.PowerError {
			d.Attention = append(d.Attention, "Desktop "+dk.Name+" is in error: see its jobs.")
		}
	}
	var parts []segment
	for _, p := range powerOrder {
		parts = append(parts, segment{Label: string(p.State), N: byState[p.State], Color: p.Color})
	}
	d.ByState = stack(parts)
	if d.Pools, err = s.poolRows(r); err != nil {
		return nil, err
	}
	slices.SortFunc(d.Pools, func(a, b poolRow) int { return compareNatural(a.Pool.Name, b.Pool.Name) })
	for _, p := range d.Pools {
		other := p.Counts.Total - p.Counts.Free - p.Counts.Assigned - p.Counts.Pending
		d.PoolBars[p.Pool.ID] = stack([]segment{
			{Label: "in use", N: p.Counts.Assigned, Color: "#1f4e8c"},
			{Label: "free", N: p.Counts.Free, Color: "#2e8b57"},
			{Label: "starting", N: p.Counts.Pending, Color: "#d08c00"},
			{Label: "stopped or other", N: max(other, 0), Color: "#9aa5b1"},
		})
		if p.Counts.Free < p.Pool.MinFree && p.Counts.Pending == 0 && p.Counts.Total >= p.Pool.MaxSize {
			d.Attention = append(d.Attention, "Pool "+p.Pool.Name+" is at its maximum size with fewer free desktops than it should keep ready.")
		}
	}
	as, err := s.Store.ListAssignments(ctx, store.AssignmentFilter{})
	if err != nil {
		return nil, err
	}
	for _, a := range as {
		if a.Connected {
			d.Sessions++
		}
	}
	if s.Queue != nil {
		if d.Jobs, err = s.Queue.Counts(ctx); err != nil {
			return nil, err
		}
		d.JobsFailed = d.Jobs["discarded"]
		if d.JobsFailed > 0 {
			d.Attention = append(d.Attention, "Some jobs failed for good: see the job queue.")
		}
	}
	if d.Audit, err = s.Store.ListAudit(ctx, store.AuditFilter{Limit: 8}); err != nil {
		return nil, err
	}
	return d, nil
}

func (s *Server) dashboard(w http.ResponseWriter, r *http.Request) error {
	d, err := s.dashboardData(r)
	if err != nil {
		return err
	}
	return s.render(w, r, http.StatusOK, "admin_dashboard", "Status", d)
}

// dashboardFragment is the live part of the status page (htmx polls it).
func (s *Server) dashboardFragment(w http.ResponseWriter, r *http.Request) error {
	d, err := s.dashboardData(r)
	if err != nil {
		return err
	}
	return s.fragment(w, r, "admin_dashboard", "status", d)
}
