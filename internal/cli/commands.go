package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
)

// command is one `lobby <noun> <verb>` (or single-word) command. setup
// declares its flags on fs and returns the function that runs it, so a
// command's flags and their use stay side by side.
type command struct {
	name    string // "pools add"
	args    string // positional arguments for the usage line, e.g. "NAME"
	summary string
	minArgs int
	maxArgs int // -1: any number
	setup   func(fs *flag.FlagSet) runFunc
}

type runFunc func(ctx context.Context, r *runner, args []string) error

// commands lists every command in the order help prints them.
var commands = []*command{
	{name: "login", summary: "sign in and remember the server and token", maxArgs: 0, setup: loginCmd},
	{name: "logout", summary: "revoke the token and forget it", maxArgs: 0, setup: logoutCmd},
	{name: "whoami", summary: "show the signed-in user", maxArgs: 0, setup: whoamiCmd},
	{name: "version", summary: "print the client's (and the server's) version", maxArgs: 0, setup: versionCmd},
	{name: "connect", args: "POOL", summary: "get a desktop and serve its console to a local VNC viewer", minArgs: 1, maxArgs: 1, setup: connectCmd},
	{name: "release", args: "DESKTOP", summary: "log off from a desktop and give it back", minArgs: 1, maxArgs: 1, setup: releaseCmd},
	{name: "offers list", summary: "list the pools you may connect to", maxArgs: 0, setup: offersList},
	{name: "assignments list", summary: "list your assignments (everyone's for operators)", maxArgs: 0, setup: assignmentsList},

	{name: "pools list", summary: "list pools with their desktop counts", maxArgs: 0, setup: poolsList},
	{name: "pools show", args: "POOL", summary: "show a pool", minArgs: 1, maxArgs: 1, setup: poolsShow},
	{name: "pools add", args: "NAME", summary: "create a pool", minArgs: 1, maxArgs: 1, setup: poolsAdd},
	{name: "pools set", args: "POOL", summary: "change a pool: only the fields whose flags are given", minArgs: 1, maxArgs: 1, setup: poolsSet},
	{name: "pools rm", args: "POOL", summary: "delete a pool", minArgs: 1, maxArgs: 1, setup: poolsRm},

	{name: "desktops list", summary: "list desktops", maxArgs: 0, setup: desktopsList},
	{name: "desktops show", args: "DESKTOP", summary: "show a desktop", minArgs: 1, maxArgs: 1, setup: desktopsShow},
	{name: "desktops start", args: "DESKTOP", summary: "power a desktop on", minArgs: 1, maxArgs: 1, setup: desktopAction("start")},
	{name: "desktops stop", args: "DESKTOP", summary: "shut a desktop down", minArgs: 1, maxArgs: 1, setup: desktopAction("stop")},
	{name: "desktops suspend", args: "DESKTOP", summary: "pause a desktop in memory", minArgs: 1, maxArgs: 1, setup: desktopAction("suspend")},
	{name: "desktops resume", args: "DESKTOP", summary: "resume a suspended desktop", minArgs: 1, maxArgs: 1, setup: desktopAction("resume")},
	{name: "desktops restart", args: "DESKTOP", summary: "restart a desktop", minArgs: 1, maxArgs: 1, setup: desktopAction("restart")},
	{name: "desktops rm", args: "DESKTOP", summary: "delete a desktop", minArgs: 1, maxArgs: 1, setup: desktopAction("delete")},

	{name: "hosts list", summary: "list hosts", maxArgs: 0, setup: hostsList},
	{name: "hosts revoke", args: "HOST", summary: "revoke a host's certificate and cut its link", minArgs: 1, maxArgs: 1, setup: hostsRevoke},
	{name: "hosts remove", args: "HOST", summary: "remove a host that is not linked and has no desktops", minArgs: 1, maxArgs: 1, setup: hostsRemove},
	{name: "nodes list", summary: "list the cluster's nodes: site ID, address, mode, alive, leader", maxArgs: 0, setup: nodesList},
	{name: "nodes drain", args: "SITE", summary: "drain a node: it takes no new work and gives up the singleton duties", minArgs: 1, maxArgs: 1, setup: nodesAction("drain", "is draining")},
	{name: "nodes resume", args: "SITE", summary: "return a drained node to normal", minArgs: 1, maxArgs: 1, setup: nodesAction("resume", "is back to normal")},
	{name: "nodes remove", args: "SITE", summary: "forget a dead node", minArgs: 1, maxArgs: 1, setup: nodesRemove},
	{name: "links list", summary: "list the node's links to host agents and to the other nodes, and refused attempts", maxArgs: 0, setup: linksList},

	{name: "users list", summary: "list users", maxArgs: 0, setup: usersList},
	{name: "users show", args: "USER", summary: "show a user", minArgs: 1, maxArgs: 1, setup: usersShow},
	{name: "users add", args: "NAME", summary: "create a user (password from LOBBY_NEW_PASSWORD or asked twice)", minArgs: 1, maxArgs: 1, setup: usersAdd},
	{name: "users rm", args: "USER", summary: "delete a user", minArgs: 1, maxArgs: 1, setup: usersRm},
	{name: "users passwd", args: "[USER]", summary: "set a user's password (yours by default)", maxArgs: 1, setup: usersPasswd},

	{name: "policies list", summary: "list policies", maxArgs: 0, setup: policiesList},
	{name: "policies show", args: "POLICY", summary: "show a policy", minArgs: 1, maxArgs: 1, setup: policiesShow},
	{name: "policies add", args: "NAME", summary: "create a policy", minArgs: 1, maxArgs: 1, setup: policiesAdd},
	{name: "policies set", args: "POLICY", summary: "change a policy: only the fields whose flags are given; a list given replaces the list", minArgs: 1, maxArgs: 1, setup: policiesSet},
	{name: "policies rm", args: "POLICY", summary: "delete a policy", minArgs: 1, maxArgs: 1, setup: policiesRm},

	{name: "jobs list", summary: "list background jobs (--site N: the jobs a site owns)", maxArgs: 0, setup: jobsList},
	{name: "jobs reassign", summary: "move the jobs of a site whose node is gone (--from-site N [--to-site M])", maxArgs: 0, setup: jobsReassign},
	{name: "jobs delete", summary: "delete the unfinished jobs of a site whose node is gone (--site N)", maxArgs: 0, setup: jobsDelete},
	{name: "audit list", summary: "list audit events, newest first", maxArgs: 0, setup: auditList},

	{name: "admin token create", summary: "issue a join token for host agents (printed only now)", maxArgs: 0, setup: tokenCreate},
	{name: "admin token list", summary: "list join tokens", maxArgs: 0, setup: tokenList},
	{name: "admin token revoke", args: "ID", summary: "revoke a join token", minArgs: 1, maxArgs: 1, setup: tokenRevoke},
	{name: "admin cluster-key", summary: "print a new random cluster key (LOBBY_CLUSTER_KEY), offline", maxArgs: 0, setup: clusterKey},
}

// lookup finds the command named by the first words of args (a noun and
// a verb, or a noun, a sub-noun and a verb: "admin token create").
func lookup(args []string) (*command, []string, error) {
	for _, c := range commands {
		words := strings.Fields(c.name)
		if len(args) >= len(words) && slices.Equal(args[:len(words)], words) {
			return c, args[len(words):], nil
		}
	}
	// The longest prefix of args that names a group of commands, and the
	// words that may follow it.
	depth, verbs := 0, []string(nil)
	for d := 1; d <= len(args); d++ {
		var next []string
		for _, c := range commands {
			words := strings.Fields(c.name)
			if len(words) > d && slices.Equal(words[:d], args[:d]) && !slices.Contains(next, words[d]) {
				next = append(next, words[d])
			}
		}
		if len(next) == 0 {
			break
		}
		depth, verbs = d, next
	}
	if depth == 0 {
		return nil, nil, fmt.Errorf("unknown command %q; run `lobby help` for the list", args[0])
	}
	group := strings.Join(args[:depth], " ")
	if len(args) == depth {
		return nil, nil, fmt.Errorf("%s: missing verb: use one of %s", group, strings.Join(verbs, ", "))
	}
	return nil, nil, fmt.Errorf("%s: unknown verb %q: use one of %s", group, args[depth], strings.Join(verbs, ", "))
}

// help prints the command list, or one command's usage.
func help(env Env, args []string) int {
	if len(args) == 0 {
		printHelp(env.Stdout)
		return ExitOK
	}
	cmd, _, err := lookup(args)
	if err != nil {
		fmt.Fprintf(env.Stderr, "lobby: %v\n", err)
		return ExitUsage
	}
	fs := flag.NewFlagSet(cmd.name, flag.ContinueOnError)
	cmd.setup(fs)
	cmd.printUsage(env.Stdout, fs)
	return ExitOK
}

func printHelp(w io.Writer) {
	fmt.Fprint(w, "lobby: a connection broker for virtual desktops.\n\nUsage: lobby <command> [arguments] [flags]\n\nCommands:\n")
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	for _, c := range commands {
		fmt.Fprintf(tw, "  %s\t%s\n", strings.TrimSpace(c.name+" "+c.args), c.summary)
	}
	tw.Flush()
	fmt.Fprint(w, `
Server-side commands (run by cmd/lobby): server, dev, agent, health,
admin db migrate, admin db copy, admin db switch.

Every list and show takes --json. Flags may come before or after arguments.
Run "lobby <command> -h" for a command's flags.

Environment: LOBBY_SERVER and LOBBY_TOKEN override the saved login;
LOBBY_PASSWORD is the password for "lobby login"; LOBBY_NEW_PASSWORD is the
password for "lobby users add" and "lobby users passwd".

Exit codes: 0 ok, 1 failure, 2 usage, 3 not logged in or not allowed,
4 not found, 5 conflict.
`)
}

// printUsage prints the command's usage line and flags.
func (c *command) printUsage(w io.Writer, fs *flag.FlagSet) {
	line := "lobby " + c.name
	if c.args != "" {
		line += " " + c.args
	}
	hasFlags := false
	fs.VisitAll(func(*flag.Flag) { hasFlags = true })
	if hasFlags {
		line += " [flags]"
	}
	fmt.Fprintf(w, "usage: %s\n\n%s.\n", line, strings.ToUpper(c.summary[:1])+c.summary[1:])
	if !hasFlags {
		return
	}
	fmt.Fprint(w, "\nFlags:\n")
	var flags []*flag.Flag
	fs.VisitAll(func(f *flag.Flag) { flags = append(flags, f) })
	sort.Slice(flags, func(i, j int) bool { return flags[i].Name < flags[j].Name })
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	for _, f := range flags {
		name, usage := flag.UnquoteUsage(f)
		if name != "" {
			name = " " + name
		}
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" {
			usage += fmt.Sprintf(" (default %s)", f.DefValue)
		}
		fmt.Fprintf(tw, "  --%s%s\t%s\n", f.Name, name, usage)
	}
	tw.Flush()
}

// missing names the first positional argument not given.
func (c *command) missing(have int) string {
	words := strings.Fields(c.args)
	if have < len(words) {
		return "argument " + strings.Trim(words[have], "[]")
	}
	return "argument"
}
