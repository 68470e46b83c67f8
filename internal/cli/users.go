package cli

import (
	"context"
	"flag"
	"fmt"
	"strconv"

	"lobby/internal/client"
	"lobby/internal/lobby"
)

func usersList(fs *flag.FlagSet) runFunc {
	asJSON := jsonFlag(fs)
	return func(ctx context.Context, r *runner, _ []string) error {
		c, err := r.client()
		if err != nil {
			return err
		}
		users, err := client.All(ctx, c.ListUsers)
		if err != nil {
			return err
		}
		if *asJSON {
			return r.printJSON(users)
		}
		rows := make([][]string, 0, len(users))
		for _, u := range users {
			rows = append(rows, []string{u.Username, u.ID, string(u.Role), list(u.Groups), strconv.FormatBool(u.Disabled), when(u.Created)})
		}
		return r.printTable([]string{"USERNAME", "ID", "ROLE", "GROUPS", "DISABLED", "CREATED"}, rows)
	}
}

func usersShow(fs *flag.FlagSet) runFunc {
	asJSON := jsonFlag(fs)
	return func(ctx context.Context, r *runner, args []string) error {
		c, err := r.client()
		if err != nil {
			return err
		}
		u, err := c.GetUser(ctx, args[0])
		if err != nil {
			return err
		}
		return r.show(u, *asJSON)
	}
}

func usersAdd(fs *flag.FlagSet) runFunc {
	role := fs.String("role", string(lobby.RoleUser), "the user's `ROLE`: user, operator or admin")
	groups := fs.String("groups", "", "comma-separated `GROUPS`")
	return func(ctx context.Context, r *runner, args []string) error {
		if !lobby.Role(*role).Valid() {
			return usageErrorf("role %q is not valid: use user, operator or admin", *role)
		}
		c, err := r.client()
		if err != nil {
			return err
		}
		pw, err := r.newPassword(ctx, args[0])
		if err != nil {
			return err
		}
		u, err := c.CreateUser(ctx, client.UserSpec{Username: args[0], Password: pw, Groups: splitList(*groups), Role: lobby.Role(*role)})
		if err != nil {
			return err
		}
		fmt.Fprintf(r.env.Stdout, "Created user %s (%s, %s).\n", u.Username, u.ID, u.Role)
		return nil
	}
}

func usersRm(*flag.FlagSet) runFunc {
	return func(ctx context.Context, r *runner, args []string) error {
		c, err := r.client()
		if err != nil {
			return err
		}
		if err := c.DeleteUser(ctx, args[0]); err != nil {
			return err
		}
		fmt.Fprintf(r.env.Stdout, "Deleted user %s.\n", args[0])
		return nil
	}
}

func usersPasswd(*flag.FlagSet) runFunc {
	return func(ctx context.Context, r *runner, args []string) error {
		c, err := r.client()
		if err != nil {
			return err
		}
		// The server takes a username or ID; without one, it is the caller.
		var ref, name string
		if len(args) == 1 {
			ref, name = args[0], args[0]
		} else {
			me, err := c.Me(ctx)
			if err != nil {
				return err
			}
			ref, name = me.ID, me.Username
		}
		pw, err := r.newPassword(ctx, name)
		if err != nil {
			return err
		}
		if err := c.SetPassword(ctx, ref, pw); err != nil {
			return err
		}
		fmt.Fprintf(r.env.Stdout, "Changed the password of %s.\n", name)
		return nil
	}
}

// newPassword reads a new password from LOBBY_NEW_PASSWORD, or asks twice,
// and checks it against the password rules before anything is sent.
func (r *runner) newPassword(ctx context.Context, username string) (string, error) {
	pw, err := r.secretFromEnvOrAsk(ctx, "LOBBY_NEW_PASSWORD", fmt.Sprintf("New password for %s: ", username), true)
	if err != nil {
		return "", err
	}
	if err := lobby.ValidPassword(pw); err != nil {
		return "", err
	}
	return pw, nil
}
