package link

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"lobby/internal/linkproto"
	"lobby/internal/lobby"
	"lobby/internal/store"
	"lobby/internal/store/sqlite"
)

// TestFlushWritesWithoutTheQueue: while a flush waits on the database,
// reports still queue (they do not wait for it), and a link that ends
// meanwhile is let go only once its last report is written, so that its
// host is recorded down after it.
func TestFlushWritesWithoutTheQueue(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "lobby.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h := &Hub{Store: st, SiteID: 1, Logger: slog.New(slog.DiscardHandler)}
	host := &lobby.Host{Name: "h", Provider: "memory", State: lobby.HostDown, SiteID: 1}
	if err := st.UpsertHost(ctx, host); err != nil {
		t.Fatal(err)
	}
	l := &leaf{hub: h, status: Status{HostID: host.ID, Peer: host.Name}}
	h.queueReport(l, &linkproto.Report{CPUPercent: 42})

	// The database is busy: a transaction holds the writer.
	held, release := make(chan struct{}), make(chan struct{})
	txDone := make(chan error, 1)
	go func() {
		txDone <- st.InTx(context.Background(), func(store.Queries) error { close(held); <-release; return nil })
	}()
	<-held
	released := false
	releaseTx := func() {
		if !released {
			released = true
			close(release)
		}
	}
	t.Cleanup(releaseTx)
	flushed := make(chan struct{})
	go func() { h.flush(); close(flushed) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		h.repMu.Lock()
		taken := h.writing != nil
		h.repMu.Unlock()
		if taken {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the flush did not take the queued report")
		}
		time.Sleep(5 * time.Millisecond)
	}

	queued := make(chan struct{})
	go func() { h.queueReport(l, &linkproto.Report{CPUPercent: 43}); close(queued) }()
	select {
	case <-queued:
	case <-time.After(time.Until(deadline)):
		t.Fatal("a report waited for the flush's transaction")
	}

	// The link ends: dropReport returns once the flush wrote its report.
	l.gone.Store(true)
	dropped := make(chan *lobby.Host, 1)
	go func() {
		h.dropReport(l)
		got, _ := st.GetHost(context.Background(), host.ID)
		dropped <- got
	}()
	select {
	case got := <-dropped:
		t.Fatalf("dropReport returned while its report was being written (host then %+v)", got)
	case <-time.After(200 * time.Millisecond): // time for a wrong early return
	}
	releaseTx()
	if err := <-txDone; err != nil {
		t.Fatal(err)
	}
	<-flushed
	got := <-dropped
	if got == nil || got.State != lobby.HostUp || got.CPUPercent != 42 {
		t.Fatalf("host when dropReport returned = %+v, want up with the flushed report's CPU 42", got)
	}
	h.repMu.Lock()
	left := len(h.reports)
	h.repMu.Unlock()
	if left != 0 {
		t.Errorf("%d reports queued after the link ended, want none", left)
	}
	h.queueReport(l, &linkproto.Report{CPUPercent: 44})
	if h.reports[host.ID].l != nil {
		t.Error("a report of an ended link was queued")
	}
}
