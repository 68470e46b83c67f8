package server

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"lobby/internal/cli"
	"lobby/internal/pki"
	"lobby/internal/provider"
	"lobby/internal/store/pgtest"
)

// TestSiteJobsAPI: an operator reassigns and deletes the jobs of a site
// whose node is gone, through the API and the CLI; both are refused while
// the node is alive, and bad input is refused with its reason. Automatic
// takeover is off (an hour) so that the dead node's jobs wait for the
// operator.
func TestSiteJobsAPI(t *testing.T) {
	t.Parallel()
	dbURL, key := pgtest.URL(t), pki.NewClusterKeyString()
	proxy := newCutProxy(t, dbURL)
	_, baseA, _ := clusterNode(t, 1, "node-a", dbURL, key, time.Hour)
	_, baseB, stopB := clusterNode(t, 2, "node-b", proxy.url(t, dbURL), key, time.Hour)
	admin := login(t, baseA, "admin", adminPW)
	admin.want(201, "POST", "/api/v1/users", map[string]any{"username": "olga", "password": "olga password", "role": "operator"}, nil)
	admin.want(201, "POST", "/api/v1/users", map[string]any{"username": "ulf", "password": "ulf password", "role": "user"}, nil)
	operator := login(t, baseA, "olga", "olga password")
	user := login(t, baseA, "ulf", "ulf password")

	// A host linked to node B only, with two desktops; B runs a start
	// that blocks on the host.
	prov := newSlowHost(t)
	for _, name := range []string{"desk-1", "desk-2"} {
		if _, err := prov.Create(context.Background(), provider.Spec{Name: name}); err != nil {
			t.Fatal(err)
		}
	}
	runAgent(t, admin, "host-s", prov, baseB)
	desk := map[string]string{}
	eventually(t, "the agent reports its desktops", func() bool {
		var ds list
		admin.want(200, "GET", "/api/v1/desktops", nil, &ds)
		for _, d := range ds.Items {
			desk[d["name"].(string)] = d["id"].(string)
		}
		return len(desk) == 2
	})
	action := func(c *apiClient, name, act string) string {
		var out struct{ Job map[string]any }
		c.want(202, "POST", "/api/v1/desktops/"+desk[name]+"/actions", map[string]string{"action": act}, &out)
		if out.Job["site"] != float64(2) {
			t.Fatalf("job %+v, want it owned by site 2 (node B holds the host's link)", out.Job)
		}
		return out.Job["id"].(string)
	}
	running := action(admin, "desk-1", "start")
	gate := prov.next(t)
	defer close(gate)

	var e apiError
	for _, c := range []struct {
		name   string
		client *apiClient
		body   string
		status int
		want   string
	}{
		{"live site", operator, `{"action":"reassign","site":2}`, 409, "node-b, which is alive"},
		{"live site delete", operator, `{"action":"delete","site":2}`, 409, "node-b, which is alive"},
		{"not allowed", user, `{"action":"reassign","site":2}`, 403, ""},
		{"bad action", operator, `{"action":"explode","site":2}`, 400, "use reassign or delete"},
		{"no site", operator, `{"action":"delete"}`, 400, "0 is not a site ID"},
		{"same site", operator, `{"action":"reassign","site":9,"to_site":9}`, 400, "the site the jobs leave"},
		{"no such node", operator, `{"action":"reassign","site":9,"to_site":8}`, 400, "site 8 has no node"},
		{"delete elsewhere", operator, `{"action":"delete","site":9,"to_site":1}`, 400, "delete takes no to_site"},
		{"unknown field", operator, `{"action":"delete","site":9,"from":1}`, 400, ""},
	} {
		c.client.want(c.status, "POST", "/api/v1/jobs/actions", c.body, &e)
		if !strings.Contains(e.Error.Message, c.want) {
			t.Errorf("%s: %q, want %q in it", c.name, e.Error.Message, c.want)
		}
	}
	admin.want(400, "GET", "/api/v1/jobs?site=zero", nil, &e)

	// Node B dies. A job for its host enqueued now still goes to site 2
	// (B counts as alive for an hour here) and waits there.
	proxy.cut()
	stopB()
	waiting := action(admin, "desk-2", "stop")
	var owned list
	admin.want(200, "GET", "/api/v1/jobs?site=2", nil, &owned)
	if ids := jobIDs(owned); len(ids) != 2 || !ids[running] || !ids[waiting] {
		t.Fatalf("jobs of site 2 = %+v, want %s (running) and %s", owned.Items, running, waiting)
	}

	// Once B's heartbeat is old, the operator moves them with the CLI.
	run := func(args ...string) (int, string) {
		var out, errOut bytes.Buffer
		code := cli.Main(context.Background(), args, cli.Env{Stdout: &out, Stderr: &errOut, ConfigDir: t.TempDir(),
			Getenv: func(k string) string {
				return map[string]string{"LOBBY_SERVER": baseA, "LOBBY_TOKEN": operator.token}[k]
			}})
		return code, out.String() + errOut.String()
	}
	if code, out := run("jobs", "reassign", "--to-site", "1"); code != cli.ExitUsage || !strings.Contains(out, "--from-site is required") {
		t.Fatalf("reassign without --from-site: exit %d, %q", code, out)
	}
	var out string
	eventually(t, "node B's heartbeat is old enough to reassign its jobs", func() bool {
		var code int
		code, out = run("jobs", "reassign", "--from-site", "2", "--to-site", "1")
		if code != cli.ExitOK && (code != cli.ExitConflict || !strings.Contains(out, "which is alive")) {
			t.Fatalf("reassign: exit %d, %q; want success, or a conflict while B's heartbeat is recent", code, out)
		}
		return code == cli.ExitOK
	})
	if !strings.Contains(out, "Moved 2 jobs of site 2 to site 1") {
		t.Fatalf("reassign said %q", out)
	}
	admin.want(200, "GET", "/api/v1/jobs?site=1", nil, &owned)
	if ids := jobIDs(owned); !ids[running] || !ids[waiting] {
		t.Fatalf("jobs of site 1 = %+v, want %s and %s moved there", owned.Items, running, waiting)
	}
	for _, j := range owned.Items {
		to, _ := j["taken_over"].([]any)
		if len(to) != 1 || to[0].(map[string]any)["by"] != "olga" || to[0].(map[string]any)["from_site"] != float64(2) {
			t.Fatalf("moved job %+v, want one move from site 2 by olga", j)
		}
	}
	if code, out := run("jobs", "list", "--site", "1"); code != cli.ExitOK || !strings.Contains(out, "2→1 (olga)") {
		t.Fatalf("jobs list --site 1: exit %d, %q", code, out)
	}

	// Another job lands in the dead site's queue; the operator deletes it,
	// and its desktop, left "starting", is marked unknown until its host
	// reports.
	dropped := action(admin, "desk-2", "start")
	var res struct {
		Action string
		Site   int
		Jobs   []string
	}
	operator.want(200, "POST", "/api/v1/jobs/actions", map[string]any{"action": "delete", "site": 2}, &res)
	if res.Action != "delete" || res.Site != 2 || len(res.Jobs) != 1 || res.Jobs[0] != dropped {
		t.Fatalf("delete = %+v, want job %s", res, dropped)
	}
	admin.want(404, "GET", "/api/v1/jobs/"+dropped, nil, &e)
	var d map[string]any
	admin.want(200, "GET", "/api/v1/desktops/"+desk["desk-2"], nil, &d)
	if d["power"] != "unknown" {
		t.Fatalf("desktop of the deleted job = %+v, want power unknown", d)
	}
	var audit list
	admin.want(200, "GET", "/api/v1/audit?q=jobs.", nil, &audit)
	actions := map[string]string{}
	for _, ev := range audit.Items {
		actions[ev["action"].(string)] = ev["actor"].(string)
	}
	if actions["jobs.reassign"] != "olga" || actions["jobs.delete"] != "olga" {
		t.Fatalf("audit = %+v, want olga's reassign and delete", audit.Items)
	}
}

func jobIDs(l list) map[string]bool {
	out := map[string]bool{}
	for _, j := range l.Items {
		out[j["id"].(string)] = true
	}
	return out
}
