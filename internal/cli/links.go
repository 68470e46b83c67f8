package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"lobby/internal/client"
	"lobby/internal/linkproto"
	"lobby/internal/pki"
)

// tokenCreate issues a join token. The token alone goes to stdout, so
// TOKEN=$(lobby admin token create) works; what it means goes to stderr.
func tokenCreate(fs *flag.FlagSet) runFunc {
	asJSON := jsonFlag(fs)
	expires := fs.String("expires", "24h", "the token expires after `DURATION` (e.g. 30m, 24h, 7d; at most 30d)")
	uses := fs.Int("uses", 1, "the token admits at most `N` hosts (1 to 10000)")
	note := fs.String("note", "", "a `TEXT` saying what the token is for")
	return func(ctx context.Context, r *runner, _ []string) error {
		if *uses < 1 {
			return usageErrorf("--uses %d is not valid: give 1 to 10000", *uses)
		}
		if *expires == "" {
			return usageErrorf("--expires is empty: give a duration such as 24h")
		}
		c, err := r.client()
		if err != nil {
			return err
		}
		t, err := c.CreateJoinToken(ctx, client.JoinTokenSpec{ExpiresIn: *expires, Uses: *uses, Note: *note})
		if err != nil {
			return err
		}
		if *asJSON {
			return r.printJSON(t)
		}
		fmt.Fprintln(r.env.Stdout, t.Token)
		fmt.Fprintf(r.env.Stderr, "Join token %s: expires %s (in %s), admits %d host(s). It is shown only now: keep it secret.\n",
			t.ID, when(t.Expires), roughly(t.Expires.Sub(r.now())), t.MaxUses)
		fmt.Fprintf(r.env.Stderr, "On each host, run:\n  lobby agent --join TOKEN --hub %s --data DIR\n", c.BaseURL())
		return nil
	}
}

// roughly formats a duration to the minute: "24h", "1h30m", "5m".
func roughly(d time.Duration) string {
	s := strings.TrimSuffix(d.Round(time.Minute).String(), "0s")
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func tokenList(fs *flag.FlagSet) runFunc {
	asJSON := jsonFlag(fs)
	return func(ctx context.Context, r *runner, _ []string) error {
		c, err := r.client()
		if err != nil {
			return err
		}
		ts, err := client.All(ctx, c.ListJoinTokens)
		if err != nil {
			return err
		}
		if *asJSON {
			return r.printJSON(ts)
		}
		rows := make([][]string, 0, len(ts))
		for _, t := range ts {
			rows = append(rows, []string{t.ID, t.State, fmt.Sprintf("%d/%d", t.Uses, t.MaxUses), when(t.Expires), t.CreatedBy, when(t.Created), t.Note})
		}
		return r.printTable([]string{"ID", "STATE", "USES", "EXPIRES", "CREATED BY", "CREATED", "NOTE"}, rows)
	}
}

func tokenRevoke(*flag.FlagSet) runFunc {
	return func(ctx context.Context, r *runner, args []string) error {
		c, err := r.client()
		if err != nil {
			return err
		}
		if err := c.RevokeJoinToken(ctx, args[0]); err != nil {
			return err
		}
		fmt.Fprintf(r.env.Stdout, "Revoked join token %s; hosts that joined with it keep their certificates (lobby hosts revoke NAME cuts one off).\n", args[0])
		return nil
	}
}

// clusterKey prints a new cluster key; it needs no server.
func clusterKey(*flag.FlagSet) runFunc {
	return func(ctx context.Context, r *runner, _ []string) error {
		fmt.Fprintln(r.env.Stdout, pki.NewClusterKeyString())
		fmt.Fprintln(r.env.Stderr, "Give this same LOBBY_CLUSTER_KEY to every node of the cluster (it seals the cluster's certificate authority in the database), and keep it secret.")
		return nil
	}
}

func linksList(fs *flag.FlagSet) runFunc {
	asJSON := jsonFlag(fs)
	return func(ctx context.Context, r *runner, _ []string) error {
		c, err := r.client()
		if err != nil {
			return err
		}
		ls, err := c.ListLinks(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			return r.printJSON(ls)
		}
		rows := make([][]string, 0, len(ls))
		for _, l := range ls {
			rtt := ""
			if l.State == "up" {
				rtt = strconv.FormatFloat(l.RTTMillis, 'f', 1, 64) + " ms"
			}
			peer := l.Peer
			if l.Kind == "node" {
				peer += " (site " + strconv.Itoa(l.PeerSiteID) + ")"
			}
			rows = append(rows, []string{l.Kind, peer, l.Hub, l.State, l.Address, when(l.Since), rtt, l.LastError})
		}
		if err := r.printTable([]string{"KIND", "PEER", "HUB", "STATE", "ADDRESS", "SINCE", "RTT", "LAST ERROR"}, rows); err != nil {
			return err
		}
		// Each agent's hubs in its order of preference, as --hub takes them.
		var lines []string
		for _, l := range ls {
			var ups []linkproto.HubSetting
			if l.Kind != "leaf" || l.State != "up" || json.Unmarshal(l.Upstreams, &ups) != nil || len(ups) == 0 {
				continue
			}
			hubs := make([]string, len(ups))
			for i, u := range ups {
				hubs[i] = fmt.Sprintf("%d. %s", i+1, u)
			}
			ping := ""
			if l.Ping != "" {
				ping = " (ping " + l.Ping + ")"
			}
			lines = append(lines, fmt.Sprintf("  %s%s: %s", l.Peer, ping, strings.Join(hubs, "  ")))
		}
		if len(lines) > 0 {
			fmt.Fprintf(r.env.Stdout, "\nUpstream hubs of each host, in order:\n%s\n", strings.Join(lines, "\n"))
		}
		return nil
	}
}

func hostsRevoke(*flag.FlagSet) runFunc {
	return func(ctx context.Context, r *runner, args []string) error {
		c, err := r.client()
		if err != nil {
			return err
		}
		h, err := c.RevokeHost(ctx, args[0])
		if err != nil {
			return err
		}
		fmt.Fprintf(r.env.Stdout, "Revoked host %s (%s): its link is cut and its agent is refused until it joins again with a new token.\n", h.Name, h.ID)
		return nil
	}
}

func hostsRemove(*flag.FlagSet) runFunc {
	return func(ctx context.Context, r *runner, args []string) error {
		c, err := r.client()
		if err != nil {
			return err
		}
		if err := c.RemoveHost(ctx, args[0]); err != nil {
			return err
		}
		fmt.Fprintf(r.env.Stdout, "Removed host %s.\n", args[0])
		return nil
	}
}
