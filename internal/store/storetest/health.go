package storetest

import (
	"testing"
	"time"

	"lobby/internal/lobby"
	"lobby/internal/store"
)

func testNodeHealth(t *testing.T, f *fixture) {
	// The database's clock is this machine's here: within a minute of ours.
	db, err := f.s.DatabaseTime(f.ctx)
	must(t, err)
	if d := time.Since(db); d < -time.Minute || d > time.Minute {
		t.Fatalf("DatabaseTime = %s, %s from this machine's clock", db, d)
	}

	h := &store.NodeHealth{SiteID: 3, Instance: "inst-a"}
	wantErr(t, f.s.RecordNodeHealth(f.ctx, h), store.ErrNotFound) // no node 3
	must(t, f.s.RegisterNode(f.ctx, &lobby.Node{SiteID: 3, Name: "node-c", Started: at(0), Heartbeat: at(0)}, "inst-a", at(-time.Hour)))

	probeAt := at(time.Second)
	h = &store.NodeHealth{
		SiteID: 3, Instance: "inst-a", ClockSkew: -1500 * time.Millisecond, StoreRTT: 2345 * time.Microsecond, LoopLag: 7 * time.Millisecond,
		NotReady: "the database has not answered for 6s", CAFingerprint: "ab12", LinkCert: "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n",
		WebCertExpires: at(90 * 24 * time.Hour),
		Probes: []store.NodeProbe{
			{SiteID: 3, Address: "http://127.0.0.1:1", At: probeAt, RTT: 800 * time.Microsecond},
			{SiteID: 4, Address: "http://127.0.0.1:2", At: probeAt, Error: "connection refused"},
		},
		Links: []store.AgentLink{{HostID: "hst_1", Host: "host-a", Since: at(0), RTT: 1200 * time.Microsecond}},
	}
	before, err := f.s.DatabaseTime(f.ctx)
	must(t, err)
	must(t, f.s.RecordNodeHealth(f.ctx, h))
	after, err := f.s.DatabaseTime(f.ctx)
	must(t, err)
	if h.Recorded.Before(before.Add(-time.Millisecond)) || h.Recorded.After(after.Add(time.Millisecond)) {
		t.Fatalf("Recorded = %s, want the database's clock between %s and %s", h.Recorded, before, after)
	}
	hs, err := f.s.ListNodeHealth(f.ctx)
	must(t, err)
	if len(hs) != 1 {
		t.Fatalf("ListNodeHealth = %+v, want one record", hs)
	}
	want := *h
	want.WebCertExpires = want.WebCertExpires.Truncate(time.Microsecond)
	for i := range want.Probes {
		want.Probes[i].At = want.Probes[i].At.Truncate(time.Microsecond)
	}
	for i := range want.Links {
		want.Links[i].Since = want.Links[i].Since.Truncate(time.Microsecond)
	}
	same(t, "the record read back", hs[0], want)

	// Only the process holding the site ID records: one whose site was
	// taken over records nothing.
	wantErr(t, f.s.RecordNodeHealth(f.ctx, &store.NodeHealth{SiteID: 3, Instance: "inst-old"}), store.ErrNotFound)

	// A new record replaces the old; plain HTTP has no certificate expiry,
	// and no probes or links read back as none.
	must(t, f.s.RegisterNode(f.ctx, &lobby.Node{SiteID: 3, Name: "node-c", Started: at(time.Hour), Heartbeat: at(time.Hour)}, "inst-b", at(time.Hour)))
	h2 := &store.NodeHealth{SiteID: 3, Instance: "inst-b"}
	must(t, f.s.RecordNodeHealth(f.ctx, h2))
	wantErr(t, f.s.RecordNodeHealth(f.ctx, &store.NodeHealth{SiteID: 3, Instance: "inst-a"}), store.ErrNotFound)
	hs, err = f.s.ListNodeHealth(f.ctx)
	must(t, err)
	if len(hs) != 1 || hs[0].Instance != "inst-b" || !hs[0].WebCertExpires.IsZero() || hs[0].Probes != nil || hs[0].Links != nil || hs[0].Recorded.Before(h.Recorded) {
		t.Fatalf("after the second record: %+v", hs)
	}

	// Removing the node removes its record.
	must(t, f.s.DeleteNode(f.ctx, 3))
	hs, err = f.s.ListNodeHealth(f.ctx)
	must(t, err)
	if len(hs) != 0 {
		t.Fatalf("after removing the node its health is still there: %+v", hs)
	}
}
