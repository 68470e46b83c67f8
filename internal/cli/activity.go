package cli

import (
	"context"
	"flag"
	"fmt"
	"strconv"

	"lobby/internal/client"
	"lobby/internal/lobby"
)

func jobsList(fs *flag.FlagSet) runFunc {
	asJSON := jsonFlag(fs)
	state := fs.String("state", "", "only jobs in `STATE`")
	kind := fs.String("kind", "", "only jobs of `KIND`")
	site := fs.Int("site", 0, "only the jobs site ID `N` owns")
	return func(ctx context.Context, r *runner, _ []string) error {
		if err := checkSite("site", *site, false); err != nil {
			return err
		}
		c, err := r.client()
		if err != nil {
			return err
		}
		f := client.JobFilter{State: *state, Kind: *kind, Site: *site}
		jobs, err := client.All(ctx, func(ctx context.Context, o client.ListOptions) (*client.Page[client.Job], error) {
			return c.ListJobs(ctx, f, o)
		})
		if err != nil {
			return err
		}
		if *asJSON {
			return r.printJSON(jobs)
		}
		rows := make([][]string, 0, len(jobs))
		for _, j := range jobs {
			lastErr := ""
			if n := len(j.Errors); n > 0 {
				lastErr = j.Errors[n-1].Error
			}
			finalized := "-"
			if j.Finalized != nil {
				finalized = when(*j.Finalized)
			}
			rows = append(rows, []string{string(j.ID), j.Kind, j.State, fmt.Sprintf("%d/%d", j.Attempt, j.MaxAttempts),
				siteOrAny(j.Site), siteOrAny(j.SiteID), takenOver(j.TakenOver), when(j.Created), finalized, lastErr})
		}
		return r.printTable([]string{"ID", "KIND", "STATE", "ATTEMPT", "OWNER", "RAN ON", "TAKEN OVER", "CREATED", "FINALIZED", "LAST ERROR"}, rows)
	}
}

func auditList(fs *flag.FlagSet) runFunc {
	asJSON := jsonFlag(fs)
	q := fs.String("q", "", "only events matching `TEXT`")
	limit := fs.Int("limit", 50, "at most `N` events")
	before := fs.String("before", "", "only events older than `CURSOR` (printed after a full page)")
	return func(ctx context.Context, r *runner, _ []string) error {
		c, err := r.client()
		if err != nil {
			return err
		}
		page, err := c.ListAudit(ctx, client.AuditQuery{Q: *q, Before: *before, Limit: *limit})
		if err != nil {
			return err
		}
		if *asJSON {
			return r.printJSON(page.Items)
		}
		rows := make([][]string, 0, len(page.Items))
		for _, e := range page.Items {
			rows = append(rows, []string{strconv.FormatInt(e.ID, 10), when(e.At), e.Actor, e.Action, e.Target, e.Detail, e.Remote})
		}
		if err := r.printTable([]string{"ID", "AT", "ACTOR", "ACTION", "TARGET", "DETAIL", "REMOTE"}, rows); err != nil {
			return err
		}
		if page.Next != "" {
			fmt.Fprintf(r.env.Stderr, "Older events: lobby audit list --before %s\n", page.Next)
		}
		return nil
	}
}

func assignmentsList(fs *flag.FlagSet) runFunc {
	asJSON := jsonFlag(fs)
	return func(ctx context.Context, r *runner, _ []string) error {
		c, err := r.client()
		if err != nil {
			return err
		}
		as, err := client.All(ctx, c.ListAssignments)
		if err != nil {
			return err
		}
		if *asJSON {
			return r.printJSON(as)
		}
		rows := make([][]string, 0, len(as))
		for _, a := range as {
			rows = append(rows, []string{a.ID, a.DesktopID, a.UserID, a.PoolID, string(a.Mode), strconv.FormatBool(a.Connected), when(a.Created)})
		}
		return r.printTable([]string{"ID", "DESKTOP", "USER", "POOL", "MODE", "CONNECTED", "SINCE"}, rows)
	}
}

func offersList(fs *flag.FlagSet) runFunc {
	asJSON := jsonFlag(fs)
	return func(ctx context.Context, r *runner, _ []string) error {
		c, err := r.client()
		if err != nil {
			return err
		}
		page, err := c.ListOffers(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			return r.printJSON(page.Items)
		}
		rows := make([][]string, 0, len(page.Items))
		for _, o := range page.Items {
			holding := ""
			if o.Holding != nil {
				holding = o.Holding.DesktopID
			}
			rows = append(rows, []string{o.Pool.Name, o.Policy, string(o.Mode), strconv.Itoa(o.Counts.Free), holding})
		}
		return r.printTable([]string{"POOL", "POLICY", "MODE", "FREE", "YOUR DESKTOP"}, rows)
	}
}

func releaseCmd(*flag.FlagSet) runFunc {
	return func(ctx context.Context, r *runner, args []string) error {
		c, err := r.client()
		if err != nil {
			return err
		}
		res, err := c.Release(ctx, args[0])
		if lobby.ErrorKind(err) == lobby.KindNotFound {
			// Perhaps a name rather than an ID.
			if d, ferr := findDesktop(ctx, c, args[0]); ferr == nil && d.ID != args[0] {
				res, err = c.Release(ctx, d.ID)
			}
		}
		if err != nil {
			return err
		}
		printReleased(r, res, args[0])
		return nil
	}
}

// printReleased reports a release's outcome.
func printReleased(r *runner, res *client.ReleaseResult, ref string) {
	name := firstOf(res.Desktop.Name, ref)
	if res.Released {
		fmt.Fprintf(r.env.Stdout, "Released desktop %s.\n", name)
	} else {
		fmt.Fprintf(r.env.Stdout, "Desktop %s was not held; nothing to release.\n", name)
	}
}
