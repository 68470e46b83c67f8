package health

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"lobby/internal/lobby"
	"lobby/internal/store"
)

// agentChecks checks every host's agent: linked to a live node, with the
// link's round trip. A host's agent keeps one link, to one node; the
// other nodes reach it through that node.
func agentChecks(r *Report, f *Facts, o Options, views []*view) {
	if f.HostsErr != nil {
		r.add(Check{ID: "agents", Name: "agent", Subject: "hosts", Status: Warn,
			Detail: fmt.Sprintf("the hosts cannot be read, so their agents are not checked: %v", f.HostsErr),
			Cause:  "the database's schema is not the one this check knows (see the schema checks)",
			Fix:    "run the health check of the release that migrated the database, or migrate it (lobby admin db migrate)"})
		return
	}
	bySite := map[int]*view{}
	for _, v := range views {
		bySite[v.n.SiteID] = v
	}
	hosts := slices.Clone(f.Hosts)
	slices.SortFunc(hosts, func(a, b lobby.Host) int { return strings.Compare(a.Name, b.Name) })
	for _, h := range hosts {
		if h.Revoked {
			continue
		}
		v := bySite[h.SiteID]
		row := AgentRow{Host: h.Name, HostID: h.ID, State: string(h.State), SiteID: h.SiteID, LastSeen: h.LastSeen}
		if v != nil {
			row.Node = v.name
		}
		c := Check{ID: "agent/" + h.Name, Name: "agent", Subject: "host " + h.Name, Status: Fail}
		switch {
		case h.State != lobby.HostUp:
			c.Detail = fmt.Sprintf("host %s's agent is not linked to any node (last seen %s)", h.Name, seen(f.Now, h.LastSeen, v))
			c.Cause = "the agent is stopped or its machine is down, or it cannot reach any of its hubs (a firewall, a name mask, a revoked or expired certificate)"
			c.Fix = fmt.Sprintf("start the agent on %s and read its log; `lobby links list` on a node shows refused attempts; if the host is gone for good: lobby hosts remove %s", h.Name, h.Name)
		case v == nil || !v.alive:
			where := fmt.Sprintf("node %d", h.SiteID)
			if v != nil {
				where = v.name
			}
			c.Detail = fmt.Sprintf("host %s's link was on %s, which is dead", h.Name, where)
			c.Cause = "its node died and the agent has not linked to another node yet: its --hub list names no other live node, or it cannot reach them"
			c.Fix = fmt.Sprintf("give the agent on %s every node as a --hub, or start %s again", h.Name, where)
		default:
			c.Status = OK
			l, ok := findLink(v.rec, h.ID)
			switch {
			case ok:
				row.RTTMS = msPtr(l.RTT)
				c.Detail = fmt.Sprintf("linked to %s since %s: round trip %s", v.name, l.Since.UTC().Format(time.RFC3339), fmtDur(l.RTT))
				if l.RTT > o.SlowRTT {
					c.Status = Warn
					c.Cause = "the network between the host and its node is slow or congested, or the host is overloaded"
					c.Fix = "look at the network path, or link the agent to a nearer node first (the order of its --hub list)"
				}
			case h.CertSerial == "":
				c.Detail = fmt.Sprintf("runs inside %s (--local-agent)", v.name)
			default:
				c.Detail = fmt.Sprintf("linked to %s", v.name)
			}
		}
		r.Agents = append(r.Agents, row)
		r.add(c)
	}
}

func findLink(rec *store.NodeHealth, hostID string) (store.AgentLink, bool) {
	if rec == nil {
		return store.AgentLink{}, false
	}
	i := slices.IndexFunc(rec.Links, func(l store.AgentLink) bool { return l.HostID == hostID })
	if i < 0 {
		return store.AgentLink{}, false
	}
	return rec.Links[i], true
}

func seen(now, at time.Time, v *view) string {
	if at.IsZero() {
		return "never"
	}
	s := fmt.Sprintf("%s ago", round(max(0, now.Sub(at))))
	if v != nil {
		s += " on " + v.name
	}
	return s
}
