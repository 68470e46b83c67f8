package cli

import (
	"context"
	"flag"
	"fmt"
	"strconv"
)

func nodesList(fs *flag.FlagSet) runFunc {
	asJSON := jsonFlag(fs)
	return func(ctx context.Context, r *runner, _ []string) error {
		c, err := r.client()
		if err != nil {
			return err
		}
		ns, err := c.ListNodes(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			return r.printJSON(ns)
		}
		rows := make([][]string, 0, len(ns))
		for _, n := range ns {
			state := "dead"
			if n.Alive {
				state = "alive"
			}
			if n.Leader {
				state += ", leader"
			}
			rows = append(rows, []string{strconv.Itoa(n.SiteID), n.Name, n.Address, string(n.Mode), state, n.Version, strconv.FormatInt(n.SchemaVersion, 10), when(n.Heartbeat)})
		}
		return r.printTable([]string{"SITE", "NAME", "ADDRESS", "MODE", "STATE", "RELEASE", "SCHEMA", "HEARTBEAT"}, rows)
	}
}

func nodesAction(action, done string) func(*flag.FlagSet) runFunc {
	return func(*flag.FlagSet) runFunc {
		return func(ctx context.Context, r *runner, args []string) error {
			c, err := r.client()
			if err != nil {
				return err
			}
			if err := c.NodeAction(ctx, args[0], action); err != nil {
				return err
			}
			fmt.Fprintf(r.env.Stdout, "Node %s %s.\n", args[0], done)
			return nil
		}
	}
}

func nodesRemove(*flag.FlagSet) runFunc {
	return func(ctx context.Context, r *runner, args []string) error {
		c, err := r.client()
		if err != nil {
			return err
		}
		if err := c.RemoveNode(ctx, args[0]); err != nil {
			return err
		}
		fmt.Fprintf(r.env.Stdout, "Removed node %s.\n", args[0])
		return nil
	}
}
