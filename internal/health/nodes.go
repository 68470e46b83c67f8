package health

import (
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"lobby/internal/lobby"
	"lobby/internal/pki"
)

// nodeChecks checks one node: alive, ready, its store, its clock, its
// certificates, and who reaches its address.
func nodeChecks(r *Report, f *Facts, o Options, v *view, views []*view) {
	if !aliveCheck(r, v, o) {
		return
	}
	if !recordCheck(r, v, o) {
		portCheck(r, f, v)
		return
	}
	readyCheck(r, v, o)
	storeRTTCheck(r, v, o)
	clockCheck(r, v, o)
	certChecks(r, f, o, v)
	portCheck(r, f, v)
	for _, to := range views {
		if to.alive {
			reachCheck(r, o, v, to)
		}
	}
}

// aliveCheck reports whether the node is alive.
func aliveCheck(r *Report, v *view, o Options) bool {
	c := Check{ID: fmt.Sprintf("node/%d", v.n.SiteID), Name: "node", Subject: v.name, Status: OK}
	switch {
	case !v.alive && v.n.Heartbeat.Before(time.Unix(1, 0)):
		c.Status = Fail
		c.Detail = fmt.Sprintf("%s stopped (it left the cluster when it shut down) and has not come back", v.name)
		c.Cause = "its process was stopped"
		c.Fix = fmt.Sprintf("start it again (lobby server --site-id %d ...); if it is gone for good: lobby nodes remove %d", v.n.SiteID, v.n.SiteID)
	case !v.alive:
		c.Status = Fail
		c.Detail = fmt.Sprintf("%s is dead: no heartbeat for %s (limit %s), the last at %s", v.name, roundUp(v.hbAge), o.StaleAfter, v.n.Heartbeat.UTC().Format(time.RFC3339))
		c.Cause = "its process crashed or hangs, its machine is down, or it cannot reach the database"
		c.Fix = fmt.Sprintf("look at %s's machine and log and start it again; if it is gone for good: lobby nodes remove %d", v.n.Name, v.n.SiteID)
	case v.n.Mode == lobby.NodeDraining:
		c.Status = Warn
		c.Detail = fmt.Sprintf("%s is draining: it finishes what it has and takes nothing new", v.name)
		c.Cause = "an operator drained it"
		c.Fix = fmt.Sprintf("lobby nodes resume %d when it should serve again", v.n.SiteID)
	case v.n.Mode == lobby.NodeMaintenance:
		c.Status = Warn
		c.Detail = fmt.Sprintf("%s is in maintenance mode: it lets administrators in but refuses user sign-ins", v.name)
		c.Cause = "its release expects another schema version than the database's"
		c.Fix = "upgrade it to the release the database was migrated by"
	default:
		c.Detail = fmt.Sprintf("alive: last heartbeat %s ago; mode %s; release %s", round(max(0, v.hbAge)), v.n.Mode, v.n.Version)
	}
	r.add(c)
	return v.alive
}

// recordCheck reports whether the node's health record is fresh enough to
// judge it by.
func recordCheck(r *Report, v *view, o Options) bool {
	c := Check{ID: fmt.Sprintf("ready/%d", v.n.SiteID), Name: "ready", Subject: v.name}
	switch {
	case v.rec == nil:
		c.Status = Warn
		c.Detail = fmt.Sprintf("%s records no health, so its clock, certificates and reach are not checked", v.name)
		c.Cause = "it runs a release without the health check"
		c.Fix = "upgrade it to the release the others run"
	case !v.fresh:
		c.Status = Fail
		c.Detail = fmt.Sprintf("%s has not recorded its health for %s (limit %s), though its heartbeat moves", v.name, roundUp(v.recAge), o.StaleAfter)
		c.Cause = "its health monitor is stuck, or its writes to the database fail while its heartbeats get through"
		c.Fix = fmt.Sprintf("look at %s's log; restart it if it does not recover", v.n.Name)
	default:
		return true
	}
	r.add(c)
	return false
}

func readyCheck(r *Report, v *view, o Options) {
	c := Check{ID: fmt.Sprintf("ready/%d", v.n.SiteID), Name: "ready", Subject: v.name, Status: OK,
		Detail: fmt.Sprintf("its watchdog says ready (/readyz answers 200); its scheduler ran at worst %s late lately", fmtDur(v.rec.LoopLag))}
	switch why := v.rec.NotReady; {
	case why != "":
		c.Status = Fail
		c.Detail = "its watchdog takes it out of the load balancer (/readyz answers 503): " + why
		switch {
		case strings.Contains(why, "database"):
			c.Cause = "its connection to the database is broken, or the database is overloaded or stopped"
		case strings.Contains(why, "stuck"):
			c.Cause = "a loop in the node is blocked: a hung call, or the machine starved of CPU"
		default:
			c.Cause = "see the reason above"
		}
		c.Fix = fmt.Sprintf("it returns by itself once the cause goes away; look at %s's log (\"watchdog:\") and at the database", v.n.Name)
	case v.rec.LoopLag > o.SlowLoop:
		c.Status = Warn
		c.Detail = fmt.Sprintf("ready, but its scheduler ran %s late lately", fmtDur(v.rec.LoopLag))
		c.Cause = "the machine is starved of CPU or memory (swapping), or garbage collections are long"
		c.Fix = fmt.Sprintf("give %s's machine more CPU or memory, or fewer neighbours", v.n.Name)
	}
	r.add(c)
}

func storeRTTCheck(r *Report, v *view, o Options) {
	c := Check{ID: fmt.Sprintf("store/%d", v.n.SiteID), Name: "store", Subject: v.name, Status: OK,
		Detail: fmt.Sprintf("reaches the database: round trip %s, %s ago", fmtDur(v.rec.StoreRTT), round(max(0, v.recAge)))}
	if v.rec.StoreRTT > o.SlowRTT {
		c.Status = Warn
		c.Detail = fmt.Sprintf("reaches the database slowly: round trip %s (warning above %s)", fmtDur(v.rec.StoreRTT), fmtDur(o.SlowRTT))
		c.Cause = "the database is overloaded, or far from this node on the network"
		c.Fix = "look at the database server's load, and put the nodes near it"
	}
	r.add(c)
}

// clockCheck compares the node's clock with the database's, the one
// reference: two nodes each within the limit of it are within twice the
// limit of each other.
func clockCheck(r *Report, v *view, o Options) {
	skew := v.rec.ClockSkew
	dir := "ahead of"
	if skew < 0 {
		dir = "behind"
	}
	within := fmtDur(v.rec.StoreRTT / 2)
	c := Check{ID: fmt.Sprintf("clock/%d", v.n.SiteID), Name: "clock", Subject: v.name, Status: OK,
		Detail: fmt.Sprintf("its clock is %s %s the database's (±%s; limit %s)", fmtDur(skew), dir, within, o.MaxClockSkew)}
	if skew.Abs() > o.MaxClockSkew {
		c.Status = Fail
		c.Detail = fmt.Sprintf("clock skew: %s's clock is %s %s the database's, beyond the limit of %s", v.name, fmtDur(skew), dir, o.MaxClockSkew)
		c.Cause = "the machine's clock is not synchronized (NTP is off or cannot reach its servers)"
		c.Fix = fmt.Sprintf("synchronize %s's clock (timedatectl set-ntp true, or chrony or ntpd): heartbeats, leases and certificates compare times across machines", v.n.Name)
	}
	r.add(c)
}

func certChecks(r *Report, f *Facts, o Options, v *view) {
	r.add(linkCertCheck(f, o, v))
	c := Check{ID: fmt.Sprintf("web-cert/%d", v.n.SiteID), Name: "https certificate", Subject: v.name, Status: OK}
	exp := v.rec.WebCertExpires
	if exp.IsZero() {
		c.Detail = "plain HTTP (a TLS-terminating load balancer in front, or lobby dev)"
		r.add(c)
		return
	}
	c.Detail = fmt.Sprintf("valid until %s", day(exp))
	if left := exp.Sub(f.Now); left < o.CertWarn {
		c.Status, c.Detail = Warn, fmt.Sprintf("expires on %s, in %s", day(exp), days(left))
		if left <= 0 {
			c.Status, c.Detail = Fail, fmt.Sprintf("expired on %s: browsers and clients refuse it", day(exp))
		}
		c.Cause = "certificates have a lifetime"
		c.Fix = fmt.Sprintf("renew %s's --tls-cert and --tls-key (or delete --data/tls for a new self-signed one) and restart it", v.n.Name)
	}
	r.add(c)
}

func linkCertCheck(f *Facts, o Options, v *view) Check {
	c := Check{ID: fmt.Sprintf("cert/%d", v.n.SiteID), Name: "link certificate", Subject: v.name, Status: Fail,
		Fix: fmt.Sprintf("restart %s with this cluster's database and LOBBY_CLUSTER_KEY: a node issues itself a new link certificate at every start", v.n.Name)}
	cert, err := pki.ParseCertPEM(v.rec.LinkCert)
	if err != nil {
		c.Status, c.Detail = Warn, "it recorded no link certificate"
		c.Cause, c.Fix = "it runs without links", ""
		return c
	}
	if f.CA != nil {
		want := pki.FingerprintHex(sha256.Sum256(f.CA.Raw))
		if v.rec.CAFingerprint != want {
			c.Detail = fmt.Sprintf("it uses a CA with SHA-256 %s, not the cluster's %s", v.rec.CAFingerprint, want)
			c.Cause = "it runs on another database or cluster key than the one checked here"
			return c
		}
		id, err := pki.Verify(f.CA, []*x509.Certificate{cert}, f.Now)
		if err != nil {
			c.Detail = fmt.Sprintf("its link certificate does not verify against the cluster CA: %v", err)
			c.Cause = "the certificate expired, or was issued by another cluster's CA"
			return c
		}
		if id.Kind != pki.KindNode || id.ID != fmt.Sprint(v.n.SiteID) {
			c.Detail = fmt.Sprintf("its link certificate names %s %s, not node %d", id.Kind, id.ID, v.n.SiteID)
			c.Cause = "two nodes share a data directory or a site ID was changed without a restart"
			return c
		}
	}
	left := cert.NotAfter.Sub(f.Now)
	c.Status, c.Cause, c.Fix = OK, "", ""
	c.Detail = fmt.Sprintf("issued by the cluster CA to node %d, valid until %s", v.n.SiteID, day(cert.NotAfter))
	if f.CA == nil {
		c.Detail = fmt.Sprintf("valid until %s (not checked against the CA: no cluster key)", day(cert.NotAfter))
	}
	if left < o.CertWarn {
		c.Status, c.Detail = Warn, fmt.Sprintf("its link certificate expires on %s, in %s", day(cert.NotAfter), days(left))
		if left <= 0 {
			c.Status, c.Detail = Fail, fmt.Sprintf("its link certificate expired on %s: agents refuse it", day(cert.NotAfter))
		}
		c.Cause = "it has run for nearly the 90 days a node's link certificate lasts"
		c.Fix = fmt.Sprintf("restart %s: a node issues itself a new link certificate at every start", v.n.Name)
	}
	return c
}

// portCheck is the checker's own probe of the node's address.
func portCheck(r *Report, f *Facts, v *view) {
	p, ok := f.Probes[v.n.SiteID]
	if !ok {
		return
	}
	row := ReachRow{From: "this check, from " + f.From, ToSite: v.n.SiteID, To: v.name, Address: v.n.Address, RTTMS: ms(p.RTT)}
	c := Check{ID: fmt.Sprintf("port/%d", v.n.SiteID), Name: "port", Subject: v.name, Status: OK,
		Detail: fmt.Sprintf("answers %s at %s in %s", f.From, v.n.Address, fmtDur(p.RTT))}
	if p.Err != nil {
		row.Error = p.Err.Error()
		c.Status = Fail
		c.Detail = fmt.Sprintf("%s cannot reach it at %s: %v", f.From, v.n.Address, p.Err)
		c.Cause, c.Fix = unreachable(v.n.Address)
	}
	r.Reach = append(r.Reach, row)
	r.add(c)
}

// reachCheck is one node's probe of another's address (or its own).
func reachCheck(r *Report, o Options, from, to *view) {
	c := Check{ID: fmt.Sprintf("reach/%d-%d", from.n.SiteID, to.n.SiteID), Name: "reach", Subject: fmt.Sprintf("%s → %s", from.name, to.name), Status: OK}
	p, ok := findProbe(from.rec.Probes, to.n.SiteID)
	if !ok {
		c.Status = Warn
		c.Detail = fmt.Sprintf("%s has not probed %s yet", from.name, to.name)
		c.Cause = "the node joined moments ago: nodes probe each other every few seconds"
		c.Fix = "check again in a few seconds"
		r.add(c)
		return
	}
	row := ReachRow{FromSite: from.n.SiteID, From: from.name, ToSite: to.n.SiteID, To: to.name, Address: p.Address, RTTMS: ms(p.RTT), Error: p.Error}
	r.Reach = append(r.Reach, row)
	target := to.name + " at " + p.Address
	if from == to {
		target = "its own advertised address " + p.Address
	}
	switch {
	case p.Error != "":
		c.Status = Fail
		c.Detail = fmt.Sprintf("%s cannot reach %s: %s", from.name, target, p.Error)
		c.Cause, c.Fix = unreachable(p.Address)
	case p.RTT > o.SlowRTT:
		c.Status = Warn
		c.Detail = fmt.Sprintf("%s reaches %s slowly: round trip %s", from.name, target, fmtDur(p.RTT))
		c.Cause = "the network between them is slow or congested, or the node is overloaded"
		c.Fix = "look at the network path and the node's load"
	default:
		c.Detail = fmt.Sprintf("%s reaches %s: round trip %s", from.name, target, fmtDur(p.RTT))
	}
	r.add(c)
}

// unreachable guesses why an address does not answer, from its shape.
func unreachable(address string) (cause, fix string) {
	fix = "give each node an --advertise URL (by default from --listen) that the other nodes and the load balancer reach, and open its port in the firewall"
	u, err := url.Parse(address)
	if err != nil {
		return "the node advertises an address that is not a URL", fix
	}
	host, port, _ := net.SplitHostPort(u.Host)
	ip := net.ParseIP(host)
	switch {
	case port == "0":
		return "the node advertises port 0, which nobody can reach", fix
	case host == "" || ip != nil && ip.IsUnspecified():
		return "the node advertises " + u.Host + ", which names no host to reach", fix
	}
	return "the node is not listening there (stopped or stalled), a firewall blocks the port, or the address is wrong", fix
}

func days(d time.Duration) string {
	n := int(d.Hours() / 24)
	if n == 1 {
		return "1 day"
	}
	return fmt.Sprintf("%d days", n)
}
