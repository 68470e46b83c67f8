package cli

import (
	"context"
	"flag"
	"fmt"
	"strconv"

	"lobby/internal/client"
)

func poolsList(fs *flag.FlagSet) runFunc {
	asJSON := jsonFlag(fs)
	return func(ctx context.Context, r *runner, _ []string) error {
		c, err := r.client()
		if err != nil {
			return err
		}
		pools, err := client.All(ctx, c.ListPools)
		if err != nil {
			return err
		}
		if *asJSON {
			return r.printJSON(pools)
		}
		rows := make([][]string, 0, len(pools))
		for _, p := range pools {
			total, free, assigned, pending := "-", "-", "-", "-"
			if n := p.Counts; n != nil {
				total, free, assigned, pending = strconv.Itoa(n.Total), strconv.Itoa(n.Free), strconv.Itoa(n.Assigned), strconv.Itoa(n.Pending)
			}
			rows = append(rows, []string{p.Name, p.ID, total, free, assigned, pending,
				strconv.Itoa(p.MinSize), strconv.Itoa(p.MaxSize), strconv.Itoa(p.MinFree), p.Template})
		}
		return r.printTable([]string{"NAME", "ID", "DESKTOPS", "FREE", "ASSIGNED", "PENDING", "MIN", "MAX", "MIN FREE", "TEMPLATE"}, rows)
	}
}

func poolsShow(fs *flag.FlagSet) runFunc {
	asJSON := jsonFlag(fs)
	return func(ctx context.Context, r *runner, args []string) error {
		c, err := r.client()
		if err != nil {
			return err
		}
		p, err := c.GetPool(ctx, args[0])
		if err != nil {
			return err
		}
		return r.show(p, *asJSON)
	}
}

func poolsAdd(fs *flag.FlagSet) runFunc {
	maxSize := fs.Int("max", 0, "at most `N` desktops (required)")
	minSize := fs.Int("min", 0, "keep `N` desktops provisioned")
	minFree := fs.Int("min-free", 0, "keep `N` free desktops running ahead of demand")
	pattern := fs.String("pattern", "", "desktop name `PATTERN`; {n} is the number, {n:3} zero-pads it (default NAME-{n})")
	template := fs.String("template", "", "the provider's `TEMPLATE` (default \"default\")")
	return func(ctx context.Context, r *runner, args []string) error {
		if *maxSize <= 0 {
			return usageErrorf("missing --max N (the pool's largest size, at least 1)")
		}
		c, err := r.client()
		if err != nil {
			return err
		}
		p, err := c.CreatePool(ctx, client.PoolSpec{
			Name: args[0], MinSize: *minSize, MaxSize: *maxSize, MinFree: *minFree,
			NamePattern: *pattern, Template: *template,
		})
		if err != nil {
			return err
		}
		fmt.Fprintf(r.env.Stdout, "Created pool %s (%s).\n", p.Name, p.ID)
		return nil
	}
}

// poolsSet changes only the fields whose flags are given, so that
// `--min 0` empties a pool's stock while leaving its size alone.
func poolsSet(fs *flag.FlagSet) runFunc {
	asJSON := jsonFlag(fs)
	maxSize := fs.Int("max", 0, "at most `N` desktops")
	minSize := fs.Int("min", 0, "keep `N` desktops provisioned (0: none)")
	minFree := fs.Int("min-free", 0, "keep `N` free desktops running ahead of demand (0: none)")
	pattern := fs.String("pattern", "", "desktop name `PATTERN` of new desktops; {n} is the number, {n:3} zero-pads it ('' for NAME-{n})")
	template := fs.String("template", "", "the provider's `TEMPLATE` for new desktops")
	return func(ctx context.Context, r *runner, args []string) error {
		set := given(fs)
		up := client.PoolUpdate{
			MaxSize: ifGiven(set, "max", maxSize), MinSize: ifGiven(set, "min", minSize), MinFree: ifGiven(set, "min-free", minFree),
			NamePattern: ifGiven(set, "pattern", pattern), Template: ifGiven(set, "template", template),
		}
		if up == (client.PoolUpdate{}) {
			return nothingToSet(fs, "json")
		}
		c, err := r.client()
		if err != nil {
			return err
		}
		p, err := c.UpdatePool(ctx, args[0], up)
		if err != nil {
			return err
		}
		return r.show(p, *asJSON)
	}
}

func poolsRm(*flag.FlagSet) runFunc {
	return func(ctx context.Context, r *runner, args []string) error {
		c, err := r.client()
		if err != nil {
			return err
		}
		if err := c.DeletePool(ctx, args[0]); err != nil {
			return err
		}
		fmt.Fprintf(r.env.Stdout, "Deleted pool %s.\n", args[0])
		return nil
	}
}
