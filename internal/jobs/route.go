package jobs

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"lobby/internal/lobby"
)

// SiteQueue names the River queue of the jobs a site owns.
func SiteQueue(site int) string { return "site-" + strconv.Itoa(site) }

// queueSite reads the site of a queue named by SiteQueue.
func queueSite(queue string) (int, bool) {
	n, err := strconv.Atoi(strings.TrimPrefix(queue, "site-"))
	if err != nil || !strings.HasPrefix(queue, "site-") || n <= 0 {
		return 0, false
	}
	return n, true
}

// parseClient reads a River client ID, site-N/INSTANCE (or site-N, as
// releases before instances named it), into its site and instance.
func parseClient(id string) (site int, instance string) {
	s, instance, _ := strings.Cut(id, "/")
	site, _ = queueSite(s)
	return site, instance
}

// route picks the site whose node should run a job on a desktop: the
// node holding the link of the desktop's host when it is alive, else this
// node (which hands the job over once the host links elsewhere).
func (q *Queue) route(ctx context.Context, desktopID string) int {
	if site, ok := q.linkHolder(ctx, desktopID); ok {
		return site
	}
	return q.cfg.SiteID
}

// linkHolder is the node holding the link of a desktop's host, when it
// takes work: alive, neither draining nor in maintenance mode.
func (q *Queue) linkHolder(ctx context.Context, desktopID string) (int, bool) {
	if desktopID == "" {
		return 0, false
	}
	d, err := q.cfg.Store.GetDesktop(ctx, desktopID)
	if err != nil {
		return 0, false
	}
	h, err := q.cfg.Store.GetHost(ctx, d.HostID)
	if err != nil || h.State != lobby.HostUp || h.SiteID <= 0 {
		return 0, false
	}
	if h.SiteID != q.cfg.SiteID && !q.nodes.working(h.SiteID) {
		return 0, false
	}
	return h.SiteID, true
}

// watch is this node's view of the others' heartbeats, timed by its own
// monotonic clock so that clocks that differ between machines do not
// matter: a node is dead when its heartbeat stood still for the takeover
// timeout, or its row is gone.
type watch struct {
	mu    sync.Mutex
	seen  map[int]*seenNode
	after time.Duration
}

type seenNode struct {
	name      string
	heartbeat time.Time // as the node wrote it
	instance  string
	mode      lobby.NodeMode
	changed   time.Time // when this node saw heartbeat change (monotonic)
}

// beating reports whether s's heartbeat changed within the takeover
// timeout; w.mu is held.
func (w *watch) beating(s *seenNode) bool { return time.Since(s.changed) < w.after }

// normal reports whether s's node is in normal mode (neither draining nor
// in maintenance mode).
func (s *seenNode) normal() bool { return s.mode == lobby.NodeNormal || s.mode == "" }

func newWatch(after time.Duration) *watch {
	if after <= 0 {
		after = DefaultTakeoverAfter
	}
	return &watch{seen: map[int]*seenNode{}, after: after}
}

// update records the nodes' rows as read now.
func (w *watch) update(ns []lobby.Node) {
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	present := make(map[int]bool, len(ns))
	for _, n := range ns {
		present[n.SiteID] = true
		s, ok := w.seen[n.SiteID]
		if !ok || !s.heartbeat.Equal(n.Heartbeat) || s.instance != n.Instance {
			s = &seenNode{name: n.Name, heartbeat: n.Heartbeat, instance: n.Instance, changed: now}
			w.seen[n.SiteID] = s
		}
		s.mode = n.Mode
	}
	for site := range w.seen {
		if !present[site] {
			delete(w.seen, site)
		}
	}
}

// alive reports whether a site's node is alive: seen to beat within the
// takeover timeout. A site never seen is not.
func (w *watch) alive(site int) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	s, ok := w.seen[site]
	return ok && w.beating(s)
}

// working reports whether a site's node is alive and takes work: neither
// draining (it finishes what it runs) nor in maintenance mode (its code
// may not fit the database: its queue is stopped).
func (w *watch) working(site int) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	s, ok := w.seen[site]
	return ok && w.beating(s) && s.normal()
}

// why says why a site's node does not work its jobs, for the audit log.
func (w *watch) why(site int) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	s, ok := w.seen[site]
	switch {
	case !ok:
		return fmt.Sprintf("site %d has no node", site)
	case !w.beating(s):
		return fmt.Sprintf("node %s (site %d) stopped beating", s.name, site)
	case !s.normal():
		return fmt.Sprintf("node %s (site %d) is %s", s.name, site, s.mode)
	}
	return fmt.Sprintf("node %s (site %d) was restarted", s.name, site)
}

// instance is the process holding a site's row ("" when unknown).
func (w *watch) instance(site int) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if s, ok := w.seen[site]; ok {
		return s.instance
	}
	return ""
}

// workingSites lists the sites whose nodes take work (see working).
func (w *watch) workingSites() []int {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []int
	for site, s := range w.seen {
		if w.beating(s) && s.normal() {
			out = append(out, site)
		}
	}
	return out
}
