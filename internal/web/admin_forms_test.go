package web_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"lobby/internal/lobby"
)

// policyForm is a valid policy form; tests change one field at a time.
func policyForm(name string) url.Values {
	return url.Values{
		"name": {name}, "pools": {"demo"}, "users": {"ann, bob"}, "groups": {"eng"},
		"max_desktops": {"2"}, "mode": {"persistent"}, "on_logoff": {"on"},
		"disconnect_minutes": {"30"}, "at_time": {"19:30"}, "power_on_release": {"suspend"}, "priority": {"5"},
	}
}

func testPolicyForms(t *testing.T, n *node) {

	t.Run("create, list, edit, audit, delete", func(t *testing.T) {
		t.Parallel()
		b := n.adminAs(t)
		st, page := b.post("/admin/policies", policyForm("night-shift"))
		b.want(200, page, st, "Policy night-shift created.", `value="demo" checked`, `value="persistent" selected`, `value="suspend" selected`)
		if !kept(page, "users", "ann, bob") || !kept(page, "at_time", "19:30") {
			t.Errorf("the saved policy's fields are not shown:\n%s", excerpt(page))
		}
		st, page = b.get("/admin/policies")
		b.want(200, page, st, `data-policy="night-shift"`, "released at log-off, or after 30 minutes disconnected, or every day at 19:30")
		edit := policyForm("night-shift")
		edit.Set("priority", "9")
		edit.Del("on_logoff")
		st, page = b.post("/admin/policies/night-shift", edit)
		b.want(200, page, st, "Policy night-shift saved.")
		if !kept(page, "priority", "9") || strings.Contains(page, `name="on_logoff" value="on" checked`) {
			t.Errorf("the edit did not stick:\n%s", excerpt(page))
		}
		st, page = b.get("/admin/audit?q=night-shift")
		b.want(200, page, st, "policy.create", "policy.update")
		st, page = b.post("/admin/policies/night-shift/delete", nil)
		b.want(200, page, st, "Policy night-shift deleted.")
		if strings.Contains(page, `data-policy="night-shift"`) {
			t.Error("the deleted policy is still listed")
		}
	})

	bad := []struct {
		name   string
		change map[string]string // "" deletes the field
		field  string
		msg    string
	}{
		{"no pools", map[string]string{"pools": ""}, "pools", "offers no pools"},
		{"nobody", map[string]string{"users": " , ", "groups": ""}, "users", "applies to nobody"},
		{"max not a number", map[string]string{"max_desktops": "abc"}, "max_desktops", "enter a whole number"},
		{"max too big", map[string]string{"max_desktops": "5000"}, "max_desktops", "between 1 and 1000"},
		{"bad name", map[string]string{"name": "Night Shift"}, "name", "is not valid"},
		{"bad time", map[string]string{"at_time": "25:61"}, "at_time", "HH:MM"},
		{"negative minutes", map[string]string{"disconnect_minutes": "-1"}, "disconnect_minutes", "between 0"},
		{"unknown pool", map[string]string{"pools": "nosuch"}, "pools", "does not exist"},
		{"bad mode", map[string]string{"mode": "sometimes"}, "mode", "not valid"},
		{"bad power plan", map[string]string{"power_on_release": "explode"}, "power_on_release", "not valid"},
		{"name taken", map[string]string{"name": "demo"}, "name", "already exists"},
	}
	for _, tt := range bad {
		t.Run("bad form/"+tt.name, func(t *testing.T) {
			t.Parallel()
			b := n.adminAs(t)
			form := policyForm("bad-" + strings.ReplaceAll(tt.name, " ", "-"))
			for k, v := range tt.change {
				if v == "" {
					form.Del(k)
				} else {
					form.Set(k, v)
				}
			}
			want := http.StatusBadRequest
			if tt.name == "name taken" {
				want = http.StatusConflict
			}
			st, page := b.post("/admin/policies", form)
			b.want(want, page, st)
			if got := fieldError(page, tt.field); !strings.Contains(got, tt.msg) {
				t.Errorf("error next to %s = %q, want %q", tt.field, got, tt.msg)
			}
			for _, k := range []string{"name", "users", "max_desktops", "at_time"} {
				if !kept(page, k, form.Get(k)) {
					t.Errorf("field %s lost what was typed (%q)", k, form.Get(k))
				}
			}
		})
	}

	t.Run("bad edit keeps the page", func(t *testing.T) {
		t.Parallel()
		b := n.adminAs(t)
		form := policyForm("demo")
		form.Set("users", "*")
		form.Set("max_desktops", "abc")
		st, page := b.post("/admin/policies/demo", form)
		b.want(400, page, st, "Policy demo")
		if fieldError(page, "max_desktops") == "" || !kept(page, "max_desktops", "abc") {
			t.Errorf("no error next to max_desktops:\n%s", excerpt(page))
		}
	})
}

func testUserForms(t *testing.T, n *node) {

	t.Run("create, list, edit, reset, delete", func(t *testing.T) {
		b := n.adminAs(t)
		st, page := b.post("/admin/users", url.Values{"username": {"dana"}, "password": {"a long secret pw"}, "role": {"operator"}, "groups": {"eng, night ops"}})
		b.want(200, page, st, "User dana created.", `value="operator" selected`)
		if strings.Contains(page, "a long secret pw") {
			t.Error("the password is echoed")
		}
		st, page = b.get("/admin/users?group=night+ops")
		b.want(200, page, st, `data-user="dana"`, "1 users")
		st, page = b.get("/admin/groups")
		b.want(200, page, st, `data-group="night ops"`, `data-group="eng"`)
		st, page = b.get("/admin/roles")
		b.want(200, page, st, `href="/admin/users?role=operator">`)
		st, page = b.post("/admin/users/dana", url.Values{"role": {"user"}, "groups": {"eng"}, "disabled": {"on"}})
		b.want(200, page, st, "User dana saved.", `value="user" selected`, `name="disabled" value="on" checked`)

		st, page = b.post("/admin/users/dana/password", url.Values{"password": {"short"}, "password2": {"short"}})
		b.want(400, page, st)
		if got := fieldError(page, "new-password"); !strings.Contains(got, "too short") {
			t.Errorf("error next to the new password = %q", got)
		}
		st, page = b.post("/admin/users/dana/password", url.Values{"password": {"another long one"}, "password2": {"another long 1"}})
		b.want(400, page, st)
		if got := fieldError(page, "new-password2"); !strings.Contains(got, "differ") {
			t.Errorf("error next to the repeated password = %q", got)
		}
		st, page = b.post("/admin/users/dana/password", url.Values{"password": {"another long one"}, "password2": {"another long one"}})
		b.want(200, page, st, "Password changed.")

		st, page = b.get("/admin/audit?q=dana")
		b.want(200, page, st, "user.create", "user.update", "user.password")
		st, page = b.post("/admin/users/dana/delete", nil)
		b.want(200, page, st, "User dana deleted.")
		if strings.Contains(page, `data-user="dana"`) {
			t.Error("the deleted user is still listed")
		}
	})

	bad := []struct {
		name  string
		form  url.Values
		field string
		msg   string
		code  int
	}{
		{"short password", url.Values{"username": {"eve"}, "password": {"short"}, "role": {"user"}, "groups": {"a, b"}}, "password", "too short", 400},
		{"bad username", url.Values{"username": {"e ve"}, "password": {"long enough pw"}, "role": {"user"}}, "username", "not valid", 400},
		{"bad role", url.Values{"username": {"eve2"}, "password": {"long enough pw"}, "role": {"king"}}, "role", "not valid", 400},
		{"taken", url.Values{"username": {"admin"}, "password": {"long enough pw"}, "role": {"user"}}, "username", "already exists", 409},
	}
	for _, tt := range bad {
		t.Run("bad form/"+tt.name, func(t *testing.T) {
			t.Parallel()
			b := n.adminAs(t)
			st, page := b.post("/admin/users", tt.form)
			b.want(tt.code, page, st, "New user")
			if got := fieldError(page, tt.field); !strings.Contains(got, tt.msg) {
				t.Errorf("error next to %s = %q, want %q", tt.field, got, tt.msg)
			}
			if !kept(page, "username", tt.form.Get("username")) || !kept(page, "groups", tt.form.Get("groups")) {
				t.Errorf("what was typed is lost:\n%s", excerpt(page))
			}
			if pw := tt.form.Get("password"); strings.Contains(page, `value="`+pw+`"`) {
				t.Error("the password is echoed")
			}
		})
	}

	t.Run("last admin", func(t *testing.T) {
		t.Parallel()
		b := n.adminAs(t)
		st, page := b.post("/admin/users/admin", url.Values{"role": {"operator"}})
		b.want(409, page, st, "last administrator", `value="operator" selected`)
		st, page = b.get("/admin/users/admin")
		b.want(200, page, st)
		if strings.Contains(page, "Delete user") {
			t.Error("an administrator is offered to delete themselves")
		}
	})
}

func testSimulate(t *testing.T, n *node) {
	n.addUser(t, "carol", lobby.RoleUser, "sim")
	form := policyForm("sim-group")
	form.Set("users", "")
	form.Set("groups", "sim")
	form.Set("priority", "7")
	st, page := n.adminAs(t).post("/admin/policies", form)
	n.adminAs(t).want(200, page, st, "Policy sim-group created.")

	tests := []struct {
		user   string
		status int
		has    []string
	}{
		{"carol", 200, []string{`data-pool="demo"`, `>sim-group</a>`, "carol is in group sim", "persistent", "suspend", "released at log-off", "demo"}},
		{"admin", 200, []string{`>demo</a>`, "the policy applies to everyone (*)"}},
		{"nobody-here", 400, []string{`id="user-error"`, "there is no user nobody-here"}},
	}
	for _, tt := range tests {
		t.Run(tt.user, func(t *testing.T) {
			t.Parallel()
			b := n.adminAs(t)
			st, page := b.get("/admin/policies/simulate?user=" + url.QueryEscape(tt.user))
			b.want(tt.status, page, st, tt.has...)
			if !kept(page, "user", tt.user) {
				t.Error("the username asked about is not kept")
			}
		})
	}
	t.Run("shadowed", func(t *testing.T) {
		t.Parallel()
		b := n.adminAs(t)
		_, page := b.get("/admin/policies/simulate?user=carol")
		i := strings.Index(page, `data-pool="demo"`)
		if i < 0 || !strings.Contains(page[i:], "<td class=\"hide-narrow\">demo</td>") {
			t.Errorf("the demo policy is not shown as shadowed for carol:\n%s", excerpt(page))
		}
	})
}

func testDesktopActions(t *testing.T, n *node) {
	n.addUser(t, "frank", lobby.RoleUser, "")
	ds := []lobby.Desktop{n.desktop(t, "demo-1"), n.desktop(t, "demo-2")}
	b := n.adminAs(t)
	path := "/admin/desktops/" + ds[0].ID

	st, page := b.post(path+"/assign", url.Values{"user": {"nosuch"}})
	b.want(400, page, st)
	if got := fieldError(page, "user"); !strings.Contains(got, "does not exist") || !kept(page, "user", "nosuch") {
		t.Errorf("error next to user = %q", got)
	}
	st, page = b.post(path+"/assign", url.Values{"user": {"frank"}})
	b.want(200, page, st, "Desktop assigned to frank.", "Held by <strong>frank</strong>", "Unassign")
	st, page = b.get("/admin/desktops?assigned=yes")
	b.want(200, page, st, "1 desktops", "<td>frank</td>")
	st, page = b.post(path+"/unassign", nil)
	b.want(200, page, st, "back in its pool", `action="`+path+`/assign"`)

	st, page = b.post(path+"/action", url.Values{"action": {"explode"}})
	b.want(400, page, st)
	if got := fieldError(page, "action"); !strings.Contains(got, "not valid") {
		t.Errorf("error next to the actions = %q", got)
	}
	st, page = b.post(path+"/action", url.Values{"action": {"stop"}})
	b.want(200, page, st, "stop requested (job ")
	// The pool manager may start the desktop again to keep one ready: wait
	// for the job, not for the state.
	id := jobOf(page)
	waitFor(t, "the stop job", func() bool {
		j, err := n.srv.Queue.Get(context.Background(), id)
		return err == nil && j.State == "completed"
	})
	st, page = b.get(path)
	b.want(200, page, st, "<td>"+id+"</td>", "<td>stop</td>", `<span class="badge completed">completed</span>`)
	// The page's state and jobs refresh by themselves from a fragment.
	st, page = b.do("GET", path+"/live", nil, http.Header{"Hx-Request": {"true"}})
	b.want(200, page, st, `id="desktop-stats" hx-get="`+path+`/live"`, `id="desktop-jobs"`, "<td>"+id+"</td>")
	if strings.Contains(page, "<html") {
		t.Error("the live part of the desktop page is a whole page")
	}

	st, page = b.post("/admin/desktops/"+ds[1].ID+"/action", url.Values{"action": {"delete"}})
	b.want(200, page, st, "delete requested", "<h1>Desktops</h1>")
	st, page = b.get("/admin/audit?q=desktop.")
	b.want(200, page, st, "desktop.assign", "desktop.unassign", "desktop.stop", "desktop.delete")
}

func testSettings(t *testing.T, n *node) {
	b := n.adminAs(t)
	long := strings.Repeat("x", 501)
	st, page := b.post("/admin/settings", url.Values{"banner": {long}})
	b.want(400, page, st, long)
	if got := fieldError(page, "banner"); !strings.Contains(got, "keep it to 500") {
		t.Errorf("error next to banner = %q", got)
	}
	st, page = b.post("/admin/settings", url.Values{"banner": {"two\nlines"}})
	b.want(400, page, st)
	st, page = b.post("/admin/settings", url.Values{"banner": {"Maintenance on Friday <19:00>"}})
	b.want(200, page, st, "Settings saved.", "Maintenance on Friday &lt;19:00&gt;</textarea>")
	if v, err := n.srv.Store.GetSetting(context.Background(), "portal.banner"); err != nil || v != "Maintenance on Friday <19:00>" {
		t.Errorf("stored banner = %q, %v", v, err)
	}
	st, page = b.get("/admin/audit?q=portal.banner")
	b.want(200, page, st, "setting.update")
}

// testJobs cancels and retries a real job: a power action on a desktop
// whose host has no agent fails and waits to be retried.
func testJobs(t *testing.T, n *node) {
	ctx := context.Background()
	h := &lobby.Host{Name: "ghost", Provider: "memory", State: lobby.HostDown, SiteID: 1}
	if err := n.srv.Store.UpsertHost(ctx, h); err != nil {
		t.Fatal(err)
	}
	d := &lobby.Desktop{Name: "ghost-1", HostID: h.ID, Power: lobby.PowerStopped, ConsoleKind: "vnc"}
	if err := n.srv.Store.CreateDesktop(ctx, d); err != nil {
		t.Fatal(err)
	}
	b := n.adminAs(t)
	st, page := b.post("/admin/desktops/"+d.ID+"/action", url.Values{"action": {"start"}})
	b.want(200, page, st, "start requested (job ")
	id := jobOf(page)
	waitFor(t, "the job to fail once", func() bool {
		j, err := n.srv.Queue.Get(ctx, id)
		return err == nil && j.State == "retryable"
	})
	row := `data-job="` + id + `"`
	st, page = b.get("/admin/jobs?kind=desktop.power")
	b.want(200, page, st, row, "ghost-1", `action="/admin/jobs/`+id+`/cancel"`, `action="/admin/jobs/`+id+`/retry"`, `class="job-errors"`, "is not linked to this node",
		`<td class="hide-narrow job-site">1</td>`) // owned by this node's site

	// The live table is a fragment, not a page.
	st, page = b.do("GET", "/admin/jobs/table?kind=desktop.power", nil, http.Header{"Hx-Request": {"true"}})
	b.want(200, page, st, `<div id="jobs" hx-get="/admin/jobs/table?kind=desktop.power"`, row)
	if strings.Contains(page, "<html") {
		t.Error("the job table fragment is a whole page")
	}

	st, page = b.post("/admin/jobs/"+id+"/cancel", url.Values{"back": {"/admin/jobs?state=cancelled"}})
	b.want(200, page, st, "Job "+id+" (desktop.power) is now cancelled.", row)
	st, page = b.post("/admin/jobs/"+id+"/retry", nil)
	b.want(200, page, st, "Job "+id+" (desktop.power) is now available.")
	st, page = b.get("/admin/audit?q=job+" + id)
	b.want(200, page, st, "job.cancel", "job.retry")
	st, page = b.post("/admin/jobs/999999/retry", nil)
	b.want(404, page, st, "does not exist")

	// The desktop's page lists its jobs.
	st, page = b.get("/admin/desktops/" + d.ID)
	b.want(200, page, st, "<td>"+id+"</td>", "<td>start</td>")
}

// jobOf is the job ID a flash message names: "… (job 12)."
func jobOf(page string) string {
	i := strings.Index(page, "(job ")
	if i < 0 {
		return ""
	}
	id := page[i+5:]
	return id[:strings.IndexByte(id, ')')]
}
