package jobs

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"lobby/internal/hostconn"
	"lobby/internal/lobby"
	"lobby/internal/provider"
	"lobby/internal/store"
)

// PowerArgs asks a desktop's host to change its power state. Op is one of
// start, stop, suspend, resume, restart, delete.
type PowerArgs struct {
	DesktopID string `json:"desktop_id"`
	Op        string `json:"op"`
}

// Kind implements river.JobArgs.
func (PowerArgs) Kind() string { return "desktop.power" }

// ProvisionArgs creates a desktop (already recorded in the store with power
// "creating") on its host and starts it.
type ProvisionArgs struct {
	DesktopID string `json:"desktop_id"`
	Template  string `json:"template"`
}

// Kind implements river.JobArgs.
func (ProvisionArgs) Kind() string { return "desktop.provision" }

// PowerOps are the operations Power accepts.
var PowerOps = []string{"start", "stop", "suspend", "resume", "restart", "delete"}

// Power enqueues a power operation on a desktop.
func (q *Queue) Power(ctx context.Context, desktopID, op string) (Job, error) {
	valid := false
	for _, o := range PowerOps {
		valid = valid || o == op
	}
	if !valid {
		return Job{}, lobby.Errorf(lobby.KindInvalid, "action %q is not valid: use start, stop, suspend, resume, restart or delete", op)
	}
	return q.insert(ctx, PowerArgs{DesktopID: desktopID, Op: op}, desktopID)
}

// Provision enqueues the creation of a desktop recorded in the store.
func (q *Queue) Provision(ctx context.Context, desktopID, template string) (Job, error) {
	return q.insert(ctx, ProvisionArgs{DesktopID: desktopID, Template: template}, desktopID)
}

type powerWorker struct {
	river.WorkerDefaults[PowerArgs]
	q *Queue
}

func (w *powerWorker) Work(ctx context.Context, job *river.Job[PowerArgs]) error {
	st := w.q.cfg.Store
	d, conn, err := w.q.target(ctx, job.JobRow, job.Args.DesktopID)
	if d == nil || conn == nil {
		return err
	}
	cmd := hostconn.Command{ID: "job-" + strconv.FormatInt(job.ID, 10), Desktop: d.Name}
	var pd provider.Desktop
	switch job.Args.Op {
	case "restart":
		cmd.Op = hostconn.OpStop
		if _, err = conn.Do(ctx, cmd); err == nil {
			cmd.Op = hostconn.OpStart
			pd, err = conn.Do(ctx, cmd)
		}
	case "delete":
		cmd.Op = hostconn.OpDelete
		if _, err = conn.Do(ctx, cmd); err == nil {
			// DeleteDesktop takes the assignment with it. (Deleting
			// the assignments listed first failed with ErrNotFound
			// when a release took one meanwhile, and the desktop's
			// record stayed.)
			err = st.DeleteDesktop(ctx, d.ID)
			if err == nil || errors.Is(err, store.ErrNotFound) {
				return w.q.record(ctx, "deleted")
			}
		}
	default:
		cmd.Op = hostconn.Op(job.Args.Op)
		pd, err = conn.Do(ctx, cmd)
	}
	if err != nil {
		return w.q.fail(ctx, job.JobRow, d, err)
	}
	if err := st.SetDesktopPower(ctx, d.ID, pd.Power, pd.ConsolePort); err != nil {
		return err
	}
	return w.q.record(ctx, string(pd.Power))
}

type provisionWorker struct {
	river.WorkerDefaults[ProvisionArgs]
	q *Queue
}

func (w *provisionWorker) Work(ctx context.Context, job *river.Job[ProvisionArgs]) error {
	st := w.q.cfg.Store
	d, conn, err := w.q.target(ctx, job.JobRow, job.Args.DesktopID)
	if d == nil || conn == nil {
		return err
	}
	id := "job-" + strconv.FormatInt(job.ID, 10)
	// A retried job may find the desktop created by its earlier attempt.
	if _, err := conn.Do(ctx, hostconn.Command{ID: id, Op: hostconn.OpGet, Desktop: d.Name}); err != nil {
		if _, err := conn.Do(ctx, hostconn.Command{ID: id, Op: hostconn.OpCreate, Desktop: d.Name, Template: job.Args.Template}); err != nil {
			return w.q.fail(ctx, job.JobRow, d, err)
		}
	}
	pd, err := conn.Do(ctx, hostconn.Command{ID: id, Op: hostconn.OpStart, Desktop: d.Name})
	if err != nil {
		return w.q.fail(ctx, job.JobRow, d, err)
	}
	if err := st.SetDesktopPower(ctx, d.ID, pd.Power, pd.ConsolePort); err != nil {
		return err
	}
	return w.q.record(ctx, string(pd.Power))
}

// target loads a job's desktop and the connection to its host. With a nil
// desktop or connection the job is over here: err is what Work returns
// (nil when the desktop was deleted meanwhile, so nothing is left to do;
// a snooze when the job was handed over to the node its host is linked
// to).
func (q *Queue) target(ctx context.Context, row *rivertype.JobRow, desktopID string) (*lobby.Desktop, hostconn.Conn, error) {
	d, err := q.cfg.Store.GetDesktop(ctx, desktopID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, q.record(ctx, "desktop no longer exists")
	}
	if err != nil {
		return nil, nil, err
	}
	conn, err := q.cfg.Hosts.Get(d.HostID)
	if err != nil {
		if site, ok := q.linkHolder(ctx, desktopID); ok && site != q.cfg.SiteID {
			if herr := q.handOver(ctx, row, site); herr == nil {
				return d, nil, river.JobSnooze(0)
			}
		}
		return d, nil, q.fail(ctx, row, d, err)
	}
	return d, conn, nil
}

// handOver moves a running job of this node to the queue of the node its
// host is linked to; the snooze that follows puts it back to available
// there without spending an attempt.
func (q *Queue) handOver(ctx context.Context, row *rivertype.JobRow, site int) error {
	n, err := q.db.exec(ctx,
		`UPDATE river_job SET queue = $1 WHERE id = $2 AND state = 'running' AND attempt = $3`,
		`UPDATE river_job SET queue = ? WHERE id = ? AND state = 'running' AND attempt = ?`,
		SiteQueue(site), row.ID, row.Attempt)
	if err == nil && n != 1 {
		err = fmt.Errorf("job %d is no longer this attempt's", row.ID)
	}
	if err != nil {
		return err
	}
	q.log.Info("handed a job over to the node its host is linked to", "job", row.ID, "site_id", site)
	return nil
}

// record notes the running node's site ID and the result on the job.
func (q *Queue) record(ctx context.Context, result string) error {
	return river.RecordOutput(ctx, output{SiteID: q.cfg.SiteID, Result: result})
}

// fail records the failure; on the last attempt the desktop is marked in
// error so that people and the pool manager stop counting on it.
func (q *Queue) fail(ctx context.Context, row *rivertype.JobRow, d *lobby.Desktop, err error) error {
	_ = q.record(ctx, "failed: "+err.Error())
	if row.Attempt >= row.MaxAttempts {
		if perr := q.cfg.Store.SetDesktopPower(ctx, d.ID, lobby.PowerError, 0); perr != nil {
			q.cfg.Logger.Error("mark desktop in error", "desktop", d.Name, "err", perr)
		}
	}
	return fmt.Errorf("%s on host %s: %w", d.Name, d.HostID, err)
}
