package cli

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"strings"

	"lobby/internal/client"
)

// siteOrAny prints a site ID, or "-" for none.
func siteOrAny(site int) string {
	if site == 0 {
		return "-"
	}
	return strconv.Itoa(site)
}

// takenOver prints a job's moves between sites, "1→2 (alice)".
func takenOver(ts []client.JobTakeover) string {
	if len(ts) == 0 {
		return "-"
	}
	parts := make([]string, len(ts))
	for i, t := range ts {
		parts[i] = fmt.Sprintf("%d→%d", t.From, t.To)
		if t.By != "" {
			parts[i] += " (" + t.By + ")"
		}
	}
	return strings.Join(parts, ", ")
}

// checkSite checks a site ID given with --flag (0: none given).
func checkSite(flag string, site int, required bool) error {
	if site == 0 && required {
		return usageErrorf("--%s is required: give the site ID of the node that is gone (lobby nodes list)", flag)
	}
	if site < 0 || site > 65535 {
		return usageErrorf("--%s %d is not a site ID: give a number from 1 to 65535", flag, site)
	}
	return nil
}

func jobsReassign(fs *flag.FlagSet) runFunc {
	asJSON := jsonFlag(fs)
	from := fs.Int("from-site", 0, "move the jobs of site ID `N`, whose node is gone")
	to := fs.Int("to-site", 0, "to the live node of site ID `M` (default: each to the node its host is linked to)")
	return func(ctx context.Context, r *runner, _ []string) error {
		if err := checkSite("from-site", *from, true); err != nil {
			return err
		}
		if err := checkSite("to-site", *to, false); err != nil {
			return err
		}
		c, err := r.client()
		if err != nil {
			return err
		}
		res, err := c.ReassignJobs(ctx, *from, *to)
		if err != nil {
			return err
		}
		if *asJSON {
			return r.printJSON(res)
		}
		where := "to the nodes their hosts are linked to"
		if *to != 0 {
			where = fmt.Sprintf("to site %d", *to)
		}
		fmt.Fprintf(r.env.Stdout, "Moved %d jobs of site %d %s%s.\n", len(res.Jobs), *from, where, jobList(res.Jobs))
		return nil
	}
}

func jobsDelete(fs *flag.FlagSet) runFunc {
	asJSON := jsonFlag(fs)
	site := fs.Int("site", 0, "delete the unfinished jobs of site ID `N`, whose node is gone")
	return func(ctx context.Context, r *runner, _ []string) error {
		if err := checkSite("site", *site, true); err != nil {
			return err
		}
		c, err := r.client()
		if err != nil {
			return err
		}
		res, err := c.DeleteSiteJobs(ctx, *site)
		if err != nil {
			return err
		}
		if *asJSON {
			return r.printJSON(res)
		}
		fmt.Fprintf(r.env.Stdout, "Deleted %d jobs of site %d%s.\n", len(res.Jobs), *site, jobList(res.Jobs))
		return nil
	}
}

// jobList is ": 4, 7, 9" or "".
func jobList(ids []string) string {
	if len(ids) == 0 {
		return ""
	}
	return ": " + strings.Join(ids, ", ")
}
