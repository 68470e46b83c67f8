package link

import (
	"context"
	"errors"
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
// it).
func (h *Hub) queueReport(l *leaf, rep *linkproto.Report) {
	r := l.hostReport(lobby.HostUp, rep)
	h.repMu.Lock()
	if h.reports == nil {
		h.reports = map[string]report{}
	}
	h.reports[l.status.HostID] = report{l, r}
	h.repMu.Unlock()
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

// flush writes the queued reports in one transaction. A revoked host
// (revoked through another node) is cut here. It holds repMu throughout,
// so that a link that ends meanwhile is recorded down after its last
// report, not before.
func (h *Hub) flush() {
	h.repMu.Lock()
	defer h.repMu.Unlock()
	if len(h.reports) == 0 {
		return
	}
	batch := h.reports
	h.reports = nil
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var revoked []*leaf
	err := h.Store.InTx(ctx, func(q store.Queries) error {
		revoked = revoked[:0]
		for id, rep := range batch {
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
		go l.sess.Close() // not under repMu: closing waits for the agent's goodbye
	}
}

// dropReport forgets a leaf's queued report (its link ended), after any
// flush under way.
func (h *Hub) dropReport(l *leaf) {
	h.repMu.Lock()
	if r, ok := h.reports[l.status.HostID]; ok && r.l == l {
		delete(h.reports, l.status.HostID)
	}
	h.repMu.Unlock()
}
