package link

import (
	"context"
	"errors"
	"maps"
	"slices"
	"time"

	"lobby/internal/linkproto"
	"lobby/internal/lobby"
	"lobby/internal/store"
)

// flushEvery is how often the hub writes its leaves' latest reports
// (host metrics and last seen): one transaction for all of them rather
// than a write per report, which with thousands of hosts was most of the
// store's work.
const flushEvery = time.Second

// report is a leaf's latest report, waiting for the next flush.
type report struct {
	l *leaf
	r store.HostReport
}

// queueReport keeps a report for the next flush (a newer one replaces
// it). A link that ended has nothing more to report: its host is
// recorded down (see dropReport).
func (h *Hub) queueReport(l *leaf, rep *linkproto.Report) {
	r := l.hostReport(lobby.HostUp, rep)
	h.repMu.Lock()
	defer h.repMu.Unlock()
	if l.gone.Load() {
		return
	}
	if h.reports == nil {
		h.reports = map[string]report{}
	}
	h.reports[l.status.HostID] = report{l, r}
}

// flushReports writes the queued reports every flushEvery until stop.
func (h *Hub) flushReports(stop <-chan struct{}) {
	t := time.NewTicker(flushEvery)
	defer t.Stop()
	for {
		select {
		case <-stop:
			h.flush()
			return
		case <-t.C:
			h.flush()
		}
	}
}

// flush writes the queued reports in one transaction (only flushReports
// calls it, so batches are written in order). It takes the batch under
// repMu and writes it without: reports arriving meanwhile queue for the
// next flush instead of waiting on the database. A batch that fails is
// dropped, as each link reports again. A revoked host (revoked through
// another node) is cut here.
func (h *Hub) flush() {
	h.repMu.Lock()
	batch := h.reports
	if len(batch) == 0 {
		h.repMu.Unlock()
		return
	}
	written := make(chan struct{})
	h.reports, h.writing, h.written = nil, batch, written
	h.repMu.Unlock()
	defer func() {
		h.repMu.Lock()
		h.writing, h.written = nil, nil
		h.repMu.Unlock()
		close(written)
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var revoked []*leaf
	err := h.Store.InTx(ctx, func(q store.Queries) error {
		revoked = revoked[:0]
		// In ID order, as another node's flush takes the same rows: a
		// host that moved between nodes can be in both batches.
		for _, id := range slices.Sorted(maps.Keys(batch)) {
			rep := batch[id]
			err := q.SetHostReport(ctx, id, rep.r)
			switch {
			case errors.Is(err, store.ErrRevoked):
				revoked = append(revoked, rep.l)
			case errors.Is(err, store.ErrNotFound): // removed meanwhile
			case err != nil:
				return err
			}
		}
		return nil
	})
	if err != nil {
		h.Logger.Warn("record host reports", "hosts", len(batch), "err", err)
		return
	}
	for _, l := range revoked {
		l.setError("the host's certificate was revoked")
		go l.sess.Close() // closing waits for the agent's goodbye
	}
}

// dropReport forgets a leaf's queued report (its link ended) and, when a
// flush is writing one of the leaf's, waits for it: the host is then
// recorded down after its last report, not before.
func (h *Hub) dropReport(l *leaf) {
	id := l.status.HostID
	h.repMu.Lock()
	if r, ok := h.reports[id]; ok && r.l == l {
		delete(h.reports, id)
	}
	var written chan struct{}
	if r, ok := h.writing[id]; ok && r.l == l {
		written = h.written
	}
	h.repMu.Unlock()
	if written != nil {
		<-written
	}
}
