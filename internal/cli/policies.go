package cli

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"strings"

	"lobby/internal/client"
	"lobby/internal/lobby"
)

func policiesList(fs *flag.FlagSet) runFunc {
	asJSON := jsonFlag(fs)
	return func(ctx context.Context, r *runner, _ []string) error {
		c, err := r.client()
		if err != nil {
			return err
		}
		policies, err := client.All(ctx, c.ListPolicies)
		if err != nil {
			return err
		}
		if *asJSON {
			return r.printJSON(policies)
		}
		pools := poolNames(ctx, c)
		rows := make([][]string, 0, len(policies))
		for _, p := range policies {
			ps := make([]string, len(p.Pools))
			for i, id := range p.Pools {
				ps[i] = pools.name(id)
			}
			rows = append(rows, []string{p.Name, p.ID, list(ps), list(p.Users), list(p.Groups), string(p.Mode),
				strconv.Itoa(p.MaxDesktops), releaseSummary(p.Release), string(p.PowerPlan), strconv.Itoa(p.Priority)})
		}
		return r.printTable([]string{"NAME", "ID", "POOLS", "USERS", "GROUPS", "MODE", "MAX", "RELEASE", "POWER", "PRIORITY"}, rows)
	}
}

// releaseSummary says in a few words when an assignment ends.
func releaseSummary(p lobby.ReleasePlan) string {
	var parts []string
	if p.OnLogoff {
		parts = append(parts, "on logoff")
	}
	if p.DisconnectMinutes > 0 {
		parts = append(parts, fmt.Sprintf("%dm disconnected", p.DisconnectMinutes))
	}
	if p.AtTime != "" {
		parts = append(parts, "at "+p.AtTime)
	}
	if len(parts) == 0 {
		return "never"
	}
	return strings.Join(parts, ", ")
}

func policiesShow(fs *flag.FlagSet) runFunc {
	asJSON := jsonFlag(fs)
	return func(ctx context.Context, r *runner, args []string) error {
		c, err := r.client()
		if err != nil {
			return err
		}
		p, err := c.GetPolicy(ctx, args[0])
		if err != nil {
			return err
		}
		return r.show(p, *asJSON)
	}
}

func policiesAdd(fs *flag.FlagSet) runFunc {
	pools := fs.String("pools", "", "comma-separated `POOLS` (names or IDs) the policy offers (required)")
	users := fs.String("users", "", "comma-separated `USERS` it applies to; '*' is everyone")
	groups := fs.String("groups", "", "comma-separated `GROUPS` it applies to")
	mode := fs.String("mode", "", "assignment `MODE`: persistent or non-persistent (default non-persistent)")
	maxDesktops := fs.Int("max", 1, "at most `N` desktops per user")
	onLogoff := fs.Bool("release-on-logoff", false, "release the desktop when the user logs off")
	after := fs.Int("release-after", 0, "release after this many `MINUTES` disconnected (0: never)")
	at := fs.String("release-at", "", "release every day at `HH:MM`")
	power := fs.String("power-on-release", "", "power `ACTION` on release: keep, stop or suspend (default keep)")
	priority := fs.Int("priority", 0, "priority `N`: higher wins when several policies offer a pool")
	return func(ctx context.Context, r *runner, args []string) error {
		spec := client.PolicySpec{
			Name: args[0], Pools: splitList(*pools), Users: splitList(*users), Groups: splitList(*groups),
			MaxDesktops: *maxDesktops, Mode: lobby.AssignMode(*mode),
			Release:   lobby.ReleasePlan{OnLogoff: *onLogoff, DisconnectMinutes: *after, AtTime: *at},
			PowerPlan: lobby.PowerAction(*power), Priority: *priority,
		}
		if len(spec.Pools) == 0 {
			return usageErrorf("missing --pools: name the pools the policy offers")
		}
		if len(spec.Users) == 0 && len(spec.Groups) == 0 {
			return usageErrorf("missing --users or --groups: say whom the policy applies to ('*' for everyone)")
		}
		c, err := r.client()
		if err != nil {
			return err
		}
		p, err := c.CreatePolicy(ctx, spec)
		if err != nil {
			return err
		}
		fmt.Fprintf(r.env.Stdout, "Created policy %s (%s).\n", p.Name, p.ID)
		return nil
	}
}

// policiesSet changes only the fields whose flags are given; a list flag
// replaces the whole list (an empty --groups empties it).
func policiesSet(fs *flag.FlagSet) runFunc {
	asJSON := jsonFlag(fs)
	pools := fs.String("pools", "", "comma-separated `POOLS` (names or IDs) the policy offers, replacing its list")
	users := fs.String("users", "", "comma-separated `USERS` it applies to, replacing its list; '*' is everyone")
	groups := fs.String("groups", "", "comma-separated `GROUPS` it applies to, replacing its list")
	mode := fs.String("mode", "", "assignment `MODE`: persistent or non-persistent")
	maxDesktops := fs.Int("max", 0, "at most `N` desktops per user")
	onLogoff := fs.Bool("release-on-logoff", false, "release the desktop when the user logs off (--release-on-logoff=false: no longer)")
	after := fs.Int("release-after", 0, "release after this many `MINUTES` disconnected (0: never)")
	at := fs.String("release-at", "", "release every day at `HH:MM` ('': never)")
	power := fs.String("power-on-release", "", "power `ACTION` on release: keep, stop or suspend")
	priority := fs.Int("priority", 0, "priority `N`: higher wins when several policies offer a pool")
	return func(ctx context.Context, r *runner, args []string) error {
		set := given(fs)
		list := func(name, value string) *[]string {
			if !set[name] {
				return nil
			}
			l := splitList(value)
			return &l
		}
		mode, power := (*lobby.AssignMode)(mode), (*lobby.PowerAction)(power)
		up := client.PolicyUpdate{
			Pools: list("pools", *pools), Users: list("users", *users), Groups: list("groups", *groups),
			Mode: ifGiven(set, "mode", mode), MaxDesktops: ifGiven(set, "max", maxDesktops),
			PowerPlan: ifGiven(set, "power-on-release", power), Priority: ifGiven(set, "priority", priority),
		}
		rel := client.ReleaseUpdate{
			OnLogoff: ifGiven(set, "release-on-logoff", onLogoff), DisconnectMinutes: ifGiven(set, "release-after", after),
			AtTime: ifGiven(set, "release-at", at),
		}
		if rel != (client.ReleaseUpdate{}) {
			up.Release = &rel
		}
		if up == (client.PolicyUpdate{}) {
			return nothingToSet(fs, "json")
		}
		c, err := r.client()
		if err != nil {
			return err
		}
		p, err := c.UpdatePolicy(ctx, args[0], up)
		if err != nil {
			return err
		}
		return r.show(p, *asJSON)
	}
}

func policiesRm(*flag.FlagSet) runFunc {
	return func(ctx context.Context, r *runner, args []string) error {
		c, err := r.client()
		if err != nil {
			return err
		}
		if err := c.DeletePolicy(ctx, args[0]); err != nil {
			return err
		}
		fmt.Fprintf(r.env.Stdout, "Deleted policy %s.\n", args[0])
		return nil
	}
}
