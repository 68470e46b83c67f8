package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"lobby/internal/lobby"
)

// unfinished are the states of a job that has yet to run (or run again).
var unfinished = []rivertype.JobState{
	rivertype.JobStateAvailable, rivertype.JobStateRetryable,
	rivertype.JobStateScheduled, rivertype.JobStatePending,
}

// scanPage bounds one look at the jobs; a longer backlog is taken over
// page by page, one page per scan.
const scanPage = 500

// watchLoop watches the nodes' heartbeats, fences this node when it lost
// its site ID, and, while it leads, takes over dead nodes' jobs (at once
// when it becomes the leader).
func (q *Queue) watchLoop(ctx context.Context) {
	scan := time.NewTicker(q.cfg.ScanEvery)
	defer scan.Stop()
	quick := time.NewTicker(100 * time.Millisecond)
	defer quick.Stop()
	leading := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-quick.C:
			if q.cfg.Fenced() {
				q.fence()
			}
			if now := q.cfg.Leader(); now != leading {
				leading = now
				if now {
					q.scan(ctx)
				}
			}
		case <-scan.C:
			q.scan(ctx)
		}
	}
}

// scan reads the nodes and, on the leader, takes over what dead ones own.
func (q *Queue) scan(ctx context.Context) {
	if !q.watchNodes(ctx) || q.cfg.TakeoverAfter < 0 || q.Fenced() || !q.cfg.Leader() {
		return
	}
	orphans, err := q.orphans(ctx)
	if err == nil && len(orphans) > 0 {
		_, err = q.move(ctx, orphans, 0, "")
	}
	if err != nil && ctx.Err() == nil {
		q.log.Warn("take over the jobs of dead nodes", "err", err)
	}
}

// watchNodes reads the nodes' rows into the watch.
func (q *Queue) watchNodes(ctx context.Context) bool {
	ns, err := q.cfg.Store.ListNodes(ctx)
	if err != nil {
		if ctx.Err() == nil {
			q.log.Warn("watch the nodes", "err", err)
		}
		return false
	}
	q.nodes.update(ns)
	return true
}

// orphan is a job whose site (or process) is gone.
type orphan struct {
	row  *rivertype.JobRow
	from int // the site it leaves
	// keep: the job stays in its queue (its site's node was replaced by
	// a new process, which works it).
	keep bool
}

// orphans lists the running jobs of processes that are gone and the
// unfinished jobs of sites whose nodes take no work (dead, gone,
// draining, in maintenance mode).
func (q *Queue) orphans(ctx context.Context) ([]orphan, error) {
	res, err := q.client.JobList(ctx, river.NewJobListParams().States(rivertype.JobStateRunning).First(scanPage))
	if err != nil {
		return nil, fmt.Errorf("list running jobs: %w", err)
	}
	var out []orphan
	for _, r := range res.Jobs {
		site, inst := runner(r)
		if site == 0 || (site == q.cfg.SiteID && inst == q.cfg.Instance) {
			continue
		}
		alive := q.nodes.alive(site)
		if alive && (inst == "" || inst == q.nodes.instance(site)) {
			continue
		}
		owner, _ := queueSite(r.Queue)
		out = append(out, orphan{row: r, from: site, keep: alive && owner == site || r.Queue == river.QueueDefault})
	}
	// The jobs waiting for a node that does not take work: dead, gone,
	// draining or in maintenance mode.
	working := q.nodes.workingSites()
	if !slices.Contains(working, q.cfg.SiteID) {
		working = append(working, q.cfg.SiteID)
	}
	p := river.NewJobListParams().States(unfinished...).First(scanPage)
	where, args := notInQueues(working)
	pending, err := q.client.JobList(ctx, p.Where(where, args))
	if err != nil {
		return nil, fmt.Errorf("list jobs of sites that take no work: %w", err)
	}
	for _, r := range pending.Jobs {
		site, _ := queueSite(r.Queue)
		out = append(out, orphan{row: r, from: site})
	}
	return out, nil
}

// notInQueues is a JobList predicate: site queues other than the given
// sites'.
func notInQueues(sites []int) (string, river.NamedArgs) {
	args := river.NamedArgs{"site_prefix": "site-%"}
	names := make([]string, len(sites))
	for i, s := range sites {
		names[i] = "@q" + strconv.Itoa(i)
		args["q"+strconv.Itoa(i)] = SiteQueue(s)
	}
	return "(queue LIKE @site_prefix AND queue NOT IN (" + strings.Join(names, ", ") + "))", args
}

// runner is the site and instance of the process that last fetched a job.
func runner(r *rivertype.JobRow) (int, string) { return parseClient(lastAttemptedBy(r)) }

// lastAttemptedBy is the client ID of the process that last fetched a
// job ("" when none did).
func lastAttemptedBy(r *rivertype.JobRow) string {
	if n := len(r.AttemptedBy); n > 0 {
		return r.AttemptedBy[n-1]
	}
	return ""
}

// moved is one job moved by move.
type moved struct {
	id       int64
	from, to int
	running  bool
}

// move puts jobs back to work elsewhere: a running one becomes available
// again (its attempt stays spent), each in the queue of to, or when to is
// 0 of the node holding its host's link (else this node). Every update is
// conditional on the row as it was read, so a job that moved on
// meanwhile is left alone. by is the operator ("" for the takeover).
func (q *Queue) move(ctx context.Context, jobs []orphan, to int, by string) ([]moved, error) {
	var done []moved
	for _, o := range jobs {
		dest := o.row.Queue
		if !o.keep {
			site := to
			if site == 0 {
				site = q.route(ctx, desktopOf(o.row))
			}
			dest = SiteQueue(site)
		}
		toSite, _ := queueSite(dest)
		running := o.row.State == rivertype.JobStateRunning
		t := append(takeoversOf(o.row), Takeover{From: o.from, To: toSite, At: q.cfg.Now().UTC(), Running: running, By: by})
		if len(t) > keepTakeovers {
			t = t[len(t)-keepTakeovers:]
		}
		meta, err := json.Marshal(t)
		if err != nil {
			return done, err
		}
		n, err := q.db.exec(ctx,
			`UPDATE river_job SET state = CASE WHEN state = 'running' THEN 'available' ELSE state END,
				queue = $1, metadata = jsonb_set(metadata, '{lobby_takeovers}', $2::jsonb)
			WHERE id = $3 AND state::text = $4 AND attempt = $5 AND queue = $6`,
			`UPDATE river_job SET state = CASE WHEN state = 'running' THEN 'available' ELSE state END,
				queue = ?, metadata = jsonb_set(metadata, '$.lobby_takeovers', jsonb(?))
			WHERE id = ? AND state = ? AND attempt = ? AND queue = ?`,
			dest, string(meta), o.row.ID, string(o.row.State), o.row.Attempt, o.row.Queue)
		if err != nil {
			return done, fmt.Errorf("move job %d: %w", o.row.ID, err)
		}
		if n == 1 {
			done = append(done, moved{id: o.row.ID, from: o.from, to: toSite, running: running})
		}
	}
	if by == "" && len(done) > 0 {
		q.auditTakeover(ctx, done)
	}
	return done, nil
}

// desktopOf reads the desktop a job is about ("" for other kinds).
func desktopOf(r *rivertype.JobRow) string {
	var a struct {
		DesktopID string `json:"desktop_id"`
	}
	_ = json.Unmarshal(r.EncodedArgs, &a)
	return a.DesktopID
}

// auditTakeover records one audit event per site that lost jobs.
func (q *Queue) auditTakeover(ctx context.Context, ms []moved) {
	bySite := map[int][]moved{}
	for _, m := range ms {
		bySite[m.from] = append(bySite[m.from], m)
	}
	for from, ms := range bySite {
		running := 0
		for _, m := range ms {
			if m.running {
				running++
			}
		}
		why := q.nodes.why(from)
		q.log.Warn("took over the jobs of a node", "site_id", from, "why", why, "jobs", len(ms), "running", running)
		e := &lobby.AuditEvent{At: q.cfg.Now(), Actor: "system", Action: "jobs.takeover", Target: "site " + strconv.Itoa(from),
			Detail: fmt.Sprintf("%s: %d jobs taken over (%d were running): %s", why, len(ms), running, listMoves(ms))}
		if err := q.cfg.Store.AppendAudit(ctx, e); err != nil {
			q.log.Warn("audit a takeover", "err", err)
		}
	}
}

// listMoves names the first moves, "job 12 to site 2, ...".
func listMoves(ms []moved) string {
	sort.Slice(ms, func(i, j int) bool { return ms[i].id < ms[j].id })
	var b strings.Builder
	for i, m := range ms {
		if i == 20 {
			fmt.Fprintf(&b, " and %d more", len(ms)-i)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "job %d to site %d", m.id, m.to)
	}
	return b.String()
}

// siteJobs lists what a site holds: the unfinished jobs in its queue and
// the jobs its processes were running (in any queue).
func (q *Queue) siteJobs(ctx context.Context, site int) ([]orphan, error) {
	var out []orphan
	err := q.listAll(ctx, river.NewJobListParams().Queues(SiteQueue(site)).States(unfinished...), func(r *rivertype.JobRow) {
		out = append(out, orphan{row: r, from: site})
	})
	if err != nil {
		return nil, err
	}
	err = q.listAll(ctx, river.NewJobListParams().States(rivertype.JobStateRunning), func(r *rivertype.JobRow) {
		if s, _ := runner(r); s == site {
			out = append(out, orphan{row: r, from: site, keep: r.Queue == river.QueueDefault})
		}
	})
	return out, err
}

// listAll pages through a job list.
func (q *Queue) listAll(ctx context.Context, p *river.JobListParams, each func(*rivertype.JobRow)) error {
	p = p.First(scanPage)
	for {
		res, err := q.client.JobList(ctx, p)
		if err != nil {
			return fmt.Errorf("list jobs: %w", err)
		}
		for _, r := range res.Jobs {
			each(r)
		}
		if len(res.Jobs) < scanPage || res.LastCursor == nil {
			return nil
		}
		p = p.After(res.LastCursor)
	}
}

// Reassign moves the jobs a site holds (see siteJobs) to the site to, or
// when to is 0 each to the node holding its host's link (else this
// node). It returns the IDs of the jobs moved; the caller checks that the
// site's node is gone and to's is alive, and audits as by.
func (q *Queue) Reassign(ctx context.Context, from, to int, by string) ([]string, error) {
	jobs, err := q.siteJobs(ctx, from)
	if err != nil {
		return nil, err
	}
	ms, err := q.move(ctx, jobs, to, by)
	ids := make([]string, len(ms))
	for i, m := range ms {
		ids[i] = strconv.FormatInt(m.id, 10)
	}
	return ids, err
}

// DeleteSite deletes the jobs a site holds (see siteJobs) and returns
// their IDs. A desktop left in the transitional state of a deleted job
// (starting, stopping...) is marked unknown, so that its host's next
// report says what it is. The caller checks that the site's node is gone.
func (q *Queue) DeleteSite(ctx context.Context, site int) ([]string, error) {
	jobs, err := q.siteJobs(ctx, site)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, o := range jobs {
		n, err := q.db.exec(ctx,
			`DELETE FROM river_job WHERE id = $1 AND state::text = $2 AND attempt = $3`,
			`DELETE FROM river_job WHERE id = ? AND state = ? AND attempt = ?`,
			o.row.ID, string(o.row.State), o.row.Attempt)
		if err != nil {
			return ids, fmt.Errorf("delete job %d: %w", o.row.ID, err)
		}
		if n == 0 {
			continue
		}
		ids = append(ids, strconv.FormatInt(o.row.ID, 10))
		if err := q.settle(ctx, desktopOf(o.row)); err != nil {
			return ids, err
		}
	}
	return ids, nil
}

// settle marks a desktop whose job was deleted unknown if it shows the
// job's transitional state.
func (q *Queue) settle(ctx context.Context, desktopID string) error {
	if desktopID == "" {
		return nil
	}
	d, err := q.cfg.Store.GetDesktop(ctx, desktopID)
	if err != nil {
		return nil // gone: nothing to settle
	}
	switch d.Power {
	case lobby.PowerCreating, lobby.PowerStarting, lobby.PowerStopping, lobby.PowerDeleting:
		return q.cfg.Store.SetDesktopPower(ctx, d.ID, lobby.PowerUnknown, d.ConsolePort)
	}
	return nil
}
