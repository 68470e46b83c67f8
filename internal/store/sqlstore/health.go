package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"lobby/internal/store"
)

// dbNow is the database's clock in the dialect's time encoding:
// clock_timestamp() moves within a transaction, unlike now().
func (d *dialect) dbNow() string {
	return d.pick(`CAST(unixepoch('subsec') * 1000000 AS INTEGER)`, `clock_timestamp()`)
}

// DatabaseTime returns the database's clock.
func (q *queries) DatabaseTime(ctx context.Context) (time.Time, error) {
	var t time.Time
	if err := q.readRow(ctx, `SELECT `+q.d.dbNow()).Scan(timeCol{&t}); err != nil {
		return time.Time{}, fmt.Errorf("read the database's clock: %w", err)
	}
	return t, nil
}

// probeJSON and linkJSON are how probes and links are kept in their JSON
// columns: durations in microseconds, so the numbers read the same in
// psql as in the API.
type probeJSON struct {
	SiteID  int       `json:"site_id"`
	Address string    `json:"address"`
	At      time.Time `json:"at"`
	RTTus   int64     `json:"rtt_us"`
	Error   string    `json:"error,omitempty"`
}

type linkJSON struct {
	HostID string    `json:"host_id"`
	Host   string    `json:"host"`
	Since  time.Time `json:"since"`
	RTTus  int64     `json:"rtt_us"`
}

const nodeHealthCols = `site_id, instance, recorded, clock_skew_us, store_rtt_us, loop_lag_us, not_ready,
	ca_fingerprint, link_cert, web_cert_expires, probes, links`

// RecordNodeHealth inserts or replaces a node's health record, stamped
// with the database's clock; ErrNotFound unless h.Instance holds the
// site ID (a process whose site was taken over records nothing).
func (q *queries) RecordNodeHealth(ctx context.Context, h *store.NodeHealth) error {
	probes := make([]probeJSON, len(h.Probes))
	for i, p := range h.Probes {
		probes[i] = probeJSON{SiteID: p.SiteID, Address: p.Address, At: micro(p.At), RTTus: p.RTT.Microseconds(), Error: p.Error}
	}
	links := make([]linkJSON, len(h.Links))
	for i, l := range h.Links {
		links[i] = linkJSON{HostID: l.HostID, Host: l.Host, Since: micro(l.Since), RTTus: l.RTT.Microseconds()}
	}
	var recorded time.Time
	err := q.writeScan(ctx, func(r *sql.Row) error { return r.Scan(timeCol{&recorded}) },
		`INSERT INTO node_health (`+nodeHealthCols+`) SELECT ?, ?, `+q.d.dbNow()+`, ?, ?, ?, ?, ?, ?, ?, ?, ?
			WHERE EXISTS (SELECT 1 FROM nodes WHERE site_id = ? AND instance = ?)
		ON CONFLICT (site_id) DO UPDATE SET instance = excluded.instance, recorded = excluded.recorded,
			clock_skew_us = excluded.clock_skew_us, store_rtt_us = excluded.store_rtt_us, loop_lag_us = excluded.loop_lag_us,
			not_ready = excluded.not_ready, ca_fingerprint = excluded.ca_fingerprint, link_cert = excluded.link_cert,
			web_cert_expires = excluded.web_cert_expires, probes = excluded.probes, links = excluded.links
		RETURNING recorded`,
		h.SiteID, h.Instance, h.ClockSkew.Microseconds(), h.StoreRTT.Microseconds(), h.LoopLag.Microseconds(), h.NotReady,
		h.CAFingerprint, h.LinkCert, q.d.t(h.WebCertExpires), jsonText(probes), jsonText(links), h.SiteID, h.Instance)
	if err != nil {
		return noRows(err, fmt.Sprintf("record the health of node %d: no node of instance %s holds the site ID", h.SiteID, h.Instance))
	}
	h.Recorded = recorded
	return nil
}

func scanNodeHealth(sc scanner) (*store.NodeHealth, error) {
	var h store.NodeHealth
	var skew, rtt, lag int64
	var probes []probeJSON
	var links []linkJSON
	err := sc.Scan(&h.SiteID, &h.Instance, timeCol{&h.Recorded}, &skew, &rtt, &lag, &h.NotReady,
		&h.CAFingerprint, &h.LinkCert, timeCol{&h.WebCertExpires}, jsonCol{&probes}, jsonCol{&links})
	if err != nil {
		return nil, err
	}
	h.ClockSkew, h.StoreRTT, h.LoopLag = time.Duration(skew)*time.Microsecond, time.Duration(rtt)*time.Microsecond, time.Duration(lag)*time.Microsecond
	for _, p := range probes {
		h.Probes = append(h.Probes, store.NodeProbe{SiteID: p.SiteID, Address: p.Address, At: p.At.UTC(), RTT: time.Duration(p.RTTus) * time.Microsecond, Error: p.Error})
	}
	for _, l := range links {
		h.Links = append(h.Links, store.AgentLink{HostID: l.HostID, Host: l.Host, Since: l.Since.UTC(), RTT: time.Duration(l.RTTus) * time.Microsecond})
	}
	return &h, nil
}

// ListNodeHealth lists every node's health record by site ID.
func (q *queries) ListNodeHealth(ctx context.Context) ([]store.NodeHealth, error) {
	return list(ctx, q, "node health", scanNodeHealth, `SELECT `+nodeHealthCols+` FROM node_health ORDER BY site_id`)
}
