package cli

import (
	"context"
	"flag"
	"fmt"
	"strconv"

	"lobby/internal/client"
	"lobby/internal/lobby"
)

func desktopsList(fs *flag.FlagSet) runFunc {
	asJSON := jsonFlag(fs)
	pool := fs.String("pool", "", "only the desktops of `POOL` (name or ID)")
	host := fs.String("host", "", "only the desktops on `HOST` (name or ID)")
	assigned := fs.String("assigned-to", "", "only the desktops assigned to the user with this `ID`")
	return func(ctx context.Context, r *runner, _ []string) error {
		c, err := r.client()
		if err != nil {
			return err
		}
		f := client.DesktopFilter{Pool: *pool, Host: *host, AssignedTo: *assigned}
		hosts := hostNames(ctx, c)
		if *host != "" {
			f.Host = hosts.id(*host)
		}
		ds, err := client.All(ctx, func(ctx context.Context, o client.ListOptions) (*client.Page[lobby.Desktop], error) {
			return c.ListDesktops(ctx, f, o)
		})
		if err != nil {
			return err
		}
		if *asJSON {
			return r.printJSON(ds)
		}
		pools := poolNames(ctx, c)
		rows := make([][]string, 0, len(ds))
		for _, d := range ds {
			rows = append(rows, []string{d.Name, d.ID, string(d.Power), pools.name(d.PoolID), hosts.name(d.HostID), d.AssignedTo, when(d.Updated)})
		}
		return r.printTable([]string{"NAME", "ID", "POWER", "POOL", "HOST", "ASSIGNED TO", "UPDATED"}, rows)
	}
}

func desktopsShow(fs *flag.FlagSet) runFunc {
	asJSON := jsonFlag(fs)
	return func(ctx context.Context, r *runner, args []string) error {
		c, err := r.client()
		if err != nil {
			return err
		}
		d, err := findDesktop(ctx, c, args[0])
		if err != nil {
			return err
		}
		return r.show(d, *asJSON)
	}
}

// desktopAction makes the command that queues one power action.
func desktopAction(action string) func(*flag.FlagSet) runFunc {
	return func(*flag.FlagSet) runFunc {
		return func(ctx context.Context, r *runner, args []string) error {
			c, err := r.client()
			if err != nil {
				return err
			}
			d, err := findDesktop(ctx, c, args[0])
			if err != nil {
				return err
			}
			job, err := c.DesktopAction(ctx, d.ID, action)
			if err != nil {
				return err
			}
			fmt.Fprintf(r.env.Stdout, "Queued %s of desktop %s (job %s).\n", action, d.Name, job.ID)
			return nil
		}
	}
}

// findDesktop finds a desktop by ID or, failing that, by name. It returns
// the error of the lookup by ID when neither matches.
func findDesktop(ctx context.Context, c *client.Client, ref string) (*lobby.Desktop, error) {
	d, err := c.GetDesktop(ctx, ref)
	if lobby.ErrorKind(err) != lobby.KindNotFound {
		return d, err
	}
	all, lerr := client.All(ctx, func(ctx context.Context, o client.ListOptions) (*client.Page[lobby.Desktop], error) {
		return c.ListDesktops(ctx, client.DesktopFilter{}, o)
	})
	if lerr != nil {
		return nil, err
	}
	for i := range all {
		if all[i].Name == ref {
			return &all[i], nil
		}
	}
	return nil, err
}

func hostsList(fs *flag.FlagSet) runFunc {
	asJSON := jsonFlag(fs)
	return func(ctx context.Context, r *runner, _ []string) error {
		c, err := r.client()
		if err != nil {
			return err
		}
		hosts, err := client.All(ctx, c.ListHosts)
		if err != nil {
			return err
		}
		if *asJSON {
			return r.printJSON(hosts)
		}
		rows := make([][]string, 0, len(hosts))
		for _, h := range hosts {
			rows = append(rows, []string{h.Name, h.ID, h.Provider, string(h.State), strconv.Itoa(h.SiteID), when(h.LastSeen)})
		}
		return r.printTable([]string{"NAME", "ID", "PROVIDER", "STATE", "SITE", "LAST SEEN"}, rows)
	}
}

// names maps IDs to names for tables; a lookup that failed leaves it
// empty and IDs are shown as they are.
type names map[string]string

func (n names) name(id string) string {
	if s, ok := n[id]; ok {
		return s
	}
	return id
}

// id returns the ID of a name, or ref itself when it is no known name.
func (n names) id(ref string) string {
	for id, name := range n {
		if name == ref {
			return id
		}
	}
	return ref
}

// poolNames lists pools for their names, best effort.
func poolNames(ctx context.Context, c *client.Client) names {
	n := names{}
	pools, _ := client.All(ctx, c.ListPools)
	for _, p := range pools {
		n[p.ID] = p.Name
	}
	return n
}

// hostNames lists hosts for their names, best effort.
func hostNames(ctx context.Context, c *client.Client) names {
	n := names{}
	hosts, _ := client.All(ctx, c.ListHosts)
	for _, h := range hosts {
		n[h.ID] = h.Name
	}
	return n
}
