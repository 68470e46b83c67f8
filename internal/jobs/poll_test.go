package jobs_test

import (
	"context"
	"testing"
	"time"

	"lobby/internal/hostconn"
	"lobby/internal/jobs"
	"lobby/internal/store"
)

// TestInsertWakesIdleWorkers: on SQLite the workers poll rarely (an idle
// cost), so a job this node inserts must wake them itself. With a poll
// of an hour, the job runs only if the insert woke them.
func TestInsertWakesIdleWorkers(t *testing.T) {
	t.Parallel()
	c := newCluster(t, store.SQLite)
	c.node(1, "ins_a")
	hosts := hostconn.NewRegistry()
	hosts.Set(c.host.ID, hostconn.Local{P: c.prov})
	st, _ := c.db.open(t)
	q, err := jobs.New(jobs.Config{Store: st, Hosts: hosts, SiteID: 1, Instance: "ins_a", Logger: quiet, PollInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = q.Stop(ctx)
	})
	// After a while idle, so that the start's first fetch is long past.
	time.Sleep(300 * time.Millisecond)
	for i, op := range []string{"start", "stop"} {
		j, err := q.Power(t.Context(), c.desktop.ID, op)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			close(c.prov.next(t))
		}
		eventually(t, "the "+op+" job completes without a poll", func() bool { return job(t, node{Queue: q}, j.ID).State == "completed" })
	}
}
