package cli

import (
	"context"
	"encoding/json"
	"flag"
	"io"
	"maps"
	"slices"
	"strings"
	"testing"

	"lobby/internal/lobby"
)

// TestSet: `pools set` and `policies set` send only the fields whose flags
// were given (an explicit 0, false or empty list included), then show the
// object as the API answered it.
func TestSet(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		sent string            // the PUT: path and body
		show map[string]string // fields of the shown object
	}{
		{name: "pool min 0", args: []string{"pools", "set", "demo", "--min", "0"}, sent: `/api/v1/pools/demo {"min_size":0}`,
			show: map[string]string{"min_size": "0", "max_size": "5", "min_free": "1", "name_pattern": "demo-{n}", "counts.total": "2"}},
		{name: "pool minimums to 0", args: []string{"pools", "set", "--min", "0", "demo", "--min-free=0"}, sent: `/api/v1/pools/demo {"min_size":0,"min_free":0}`,
			show: map[string]string{"min_size": "0", "max_size": "5", "min_free": "0"}},
		{name: "pool the rest", args: []string{"pools", "set", "pool_demo", "--max", "8", "--pattern", "d-{n:3}", "--template", "gold"},
			sent: `/api/v1/pools/pool_demo {"max_size":8,"name_pattern":"d-{n:3}","template":"gold"}`,
			show: map[string]string{"min_size": "1", "max_size": "8", "min_free": "1", "name_pattern": "d-{n:3}", "template": "gold"}},
		{name: "policy lists replaced", args: []string{"policies", "set", "everyone", "--pools", "demo,lab", "--users", "", "--groups", "staff, ops"},
			sent: `/api/v1/policies/everyone {"pools":["demo","lab"],"users":[],"groups":["staff","ops"]}`,
			show: map[string]string{"pools": "demo,lab", "users": "-", "groups": "staff,ops", "max_desktops": "1", "priority": "2"}},
		{name: "policy release merged", args: []string{"policies", "set", "pol_1", "--release-on-logoff=false", "--release-after", "30"},
			sent: `/api/v1/policies/pol_1 {"release":{"on_logoff":false,"disconnect_minutes":30}}`,
			show: map[string]string{"release.on_logoff": "false", "release.disconnect_minutes": "30", "release.at_time": "19:30", "power_on_release": "stop"}},
		{name: "policy zeros", args: []string{"policies", "set", "everyone", "--priority", "0", "--release-at", "", "--mode", "persistent", "--max", "3", "--power-on-release", "keep"},
			sent: `/api/v1/policies/everyone {"max_desktops":3,"mode":"persistent","release":{"at_time":""},"power_on_release":"keep","priority":0}`,
			show: map[string]string{"priority": "0", "release.at_time": "-", "release.on_logoff": "true", "mode": "persistent", "max_desktops": "3", "power_on_release": "keep"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t).loggedIn(t, adminToken)
			res := b.run(context.Background(), "", false, tt.args...)
			if res.code != 0 {
				t.Fatalf("code %d\nstdout:\n%s\nstderr:\n%s", res.code, res.stdout, res.stderr)
			}
			if sent := b.api.updates(); len(sent) != 1 || sent[0] != tt.sent {
				t.Errorf("sent %q, want %q", sent, tt.sent)
			}
			shown := map[string]string{}
			for line := range strings.Lines(res.stdout) {
				k, v, _ := strings.Cut(line, ":")
				shown[k] = strings.TrimSpace(v)
			}
			for k, v := range tt.show {
				if shown[k] != v {
					t.Errorf("shown %s = %q, want %q\n%s", k, shown[k], v, res.stdout)
				}
			}
		})
	}
}

func TestSetJSON(t *testing.T) {
	t.Parallel()
	b := setup(t).loggedIn(t, adminToken)
	res := b.run(context.Background(), "", false, "pools", "set", "demo", "--min-free", "0", "--json")
	var p map[string]any
	if err := json.Unmarshal([]byte(res.stdout), &p); res.code != 0 || err != nil || p["min_free"] != 0.0 || p["min_size"] != 1.0 || p["counts"] == nil {
		t.Fatalf("code %d, %v:\n%s%s", res.code, err, res.stdout, res.stderr)
	}
	res = b.run(context.Background(), "", false, "policies", "set", "everyone", "--json", "--max", "2")
	var pol lobby.Policy
	if err := json.Unmarshal([]byte(res.stdout), &pol); res.code != 0 || err != nil || pol.MaxDesktops != 2 || pol.Release.AtTime != "19:30" {
		t.Fatalf("code %d, %v:\n%s%s", res.code, err, res.stdout, res.stderr)
	}
	if sent := b.api.updates(); !slices.Equal(sent, []string{`/api/v1/pools/demo {"min_free":0}`, `/api/v1/policies/everyone {"max_desktops":2}`}) {
		t.Fatalf("sent %q", sent)
	}
}

// TestSetRefused: what `set` refuses sends nothing (usage errors) or
// passes the API's answer on with its exit code.
func TestSetRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		token  string
		args   []string
		code   int
		stderr []string
	}{
		{name: "pool no flags", token: adminToken, args: []string{"pools", "set", "demo"}, code: ExitUsage,
			stderr: []string{"lobby: nothing to change: give one or more of --max, --min, --min-free, --pattern, --template\nusage: lobby pools set POOL [flags]", "--min-free N"}},
		{name: "pool only json", token: adminToken, args: []string{"pools", "set", "demo", "--json"}, code: ExitUsage, stderr: []string{"nothing to change"}},
		{name: "policy no flags", token: adminToken, args: []string{"policies", "set", "everyone"}, code: ExitUsage,
			stderr: []string{"nothing to change: give one or more of --groups, --max, --mode, --pools, --power-on-release, --priority, --release-after, --release-at, --release-on-logoff, --users\n"}},
		{name: "pool missing", token: adminToken, args: []string{"pools", "set", "--min", "0"}, code: ExitUsage, stderr: []string{"missing argument POOL"}},
		{name: "pool bad number", token: adminToken, args: []string{"pools", "set", "demo", "--max", "many"}, code: ExitUsage, stderr: []string{`invalid value "many" for flag -max`}},
		{name: "pool unknown", token: adminToken, args: []string{"pools", "set", "nope", "--min", "0"}, code: ExitNotFound, stderr: []string{"lobby: pool \"nope\" does not exist\n"}},
		{name: "policy unknown", token: adminToken, args: []string{"policies", "set", "nope", "--max", "2"}, code: ExitNotFound, stderr: []string{"lobby: policy \"nope\" does not exist\n"}},
		{name: "forbidden", token: userToken, args: []string{"pools", "set", "demo", "--max", "9"}, code: ExitUnauthorized, stderr: []string{"your role does not allow this"}},
		{name: "not logged in", args: []string{"policies", "set", "everyone", "--max", "9"}, code: ExitUnauthorized, stderr: []string{"not logged in"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			if tt.token != "" {
				b.loggedIn(t, tt.token)
			}
			res := b.run(context.Background(), "", false, tt.args...)
			if res.code != tt.code || res.stdout != "" || !contains(res.stderr, tt.stderr...) {
				t.Errorf("code %d, want %d\nstdout:\n%s\nstderr:\n%s", res.code, tt.code, res.stdout, res.stderr)
			}
			if sent := b.api.updates(); len(sent) != 0 {
				t.Errorf("sent %q", sent)
			}
		})
	}
}

// TestSetFlagsMatchAdd: `set` takes the flag names of `add`, so what an
// administrator typed to create a pool or policy changes it too.
func TestSetFlagsMatchAdd(t *testing.T) {
	t.Parallel()
	for _, noun := range []string{"pools", "policies"} {
		flags := func(verb string) []string {
			cmd, _, err := lookup([]string{noun, verb})
			if err != nil {
				t.Fatal(err)
			}
			fs := flag.NewFlagSet(cmd.name, flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			cmd.setup(fs)
			names := map[string]bool{"json": true} // set shows the result
			fs.VisitAll(func(f *flag.Flag) { names[f.Name] = true })
			return slices.Sorted(maps.Keys(names))
		}
		if add, set := flags("add"), flags("set"); !slices.Equal(add, set) {
			t.Errorf("%s add takes %q, %s set %q", noun, add, noun, set)
		}
	}
}
