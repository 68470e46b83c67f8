package storetest

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/rivermigrate"
)

type pingArgs struct{ N int }

func (pingArgs) Kind() string { return "storetest_ping" }

type pingWorker struct {
	river.WorkerDefaults[pingArgs]
}

func (pingWorker) Work(context.Context, *river.Job[pingArgs]) error { return nil }

// RiverWorks checks that River runs on a store's database as our
// migrations left it: its migrator finds every migration applied, and a
// client starts, works a job and stops, on the given driver (over the
// store's own pool or writer).
func RiverWorks[TTx any](t *testing.T, driver riverdriver.Driver[TTx]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	logger := slog.New(slog.DiscardHandler)

	m, err := rivermigrate.New(driver, &rivermigrate.Config{Logger: logger})
	must(t, err)
	res, err := m.Validate(ctx, nil)
	must(t, err)
	if !res.OK {
		t.Fatalf("River's migrator: %v", res.Messages)
	}

	workers := river.NewWorkers()
	river.AddWorker(workers, pingWorker{})
	client, err := river.NewClient(driver, &river.Config{
		Logger:            logger,
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 1}},
		Workers:           workers,
		FetchCooldown:     10 * time.Millisecond,
		FetchPollInterval: 20 * time.Millisecond,
	})
	must(t, err)
	done, cancelSub := client.Subscribe(river.EventKindJobCompleted)
	defer cancelSub()
	must(t, client.Start(ctx))
	defer func() { must(t, client.Stop(context.WithoutCancel(ctx))) }()
	_, err = client.Insert(ctx, pingArgs{N: 1}, nil)
	must(t, err)
	select {
	case ev := <-done:
		if ev.Job.Kind != (pingArgs{}).Kind() {
			t.Fatalf("completed job of kind %q", ev.Job.Kind)
		}
	case <-ctx.Done():
		t.Fatal("River did not work the job")
	}
}
