package server

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

func TestBrowserAdminCreatesPoolAndPolicy(t *testing.T) {
	t.Parallel()
	_, base := browserNode(t)
	b := newBrowser(t, base)
	b.signIn("admin", adminPW)

	// A bad form keeps what was typed and puts the error by the field.
	b.do("pool form with a bad size",
		chromedp.Navigate(base+"/admin/pools/new"),
		chromedp.WaitVisible(chromedp.CSS("#name")),
		chromedp.SendKeys(chromedp.CSS("#name"), "lab"),
		chromedp.SetValue(chromedp.CSS("#max_size"), "lots"),
		chromedp.Submit(chromedp.CSS("#name")),
		chromedp.WaitVisible(chromedp.CSS("#max-error")),
	)
	if got := b.text("#max-error"); !strings.Contains(got, "whole number") {
		t.Errorf("max size error = %q, want it to ask for a whole number", got)
	}
	if got := b.eval(`document.getElementById("name").value`); got != "lab" {
		t.Errorf("after the error the name field holds %q, want what was typed (lab)", got)
	}

	b.do("create pool lab",
		chromedp.SetValue(chromedp.CSS("#max_size"), "2"),
		chromedp.SetValue(chromedp.CSS("#min_size"), "1"),
		chromedp.SetValue(chromedp.CSS("#min_free"), "1"),
		chromedp.Submit(chromedp.CSS("#name")),
		chromedp.WaitVisible(chromedp.CSS(".flash")),
	)
	if got := b.text("h1"); got != "Pool lab" {
		t.Fatalf("after creating, the page heading is %q, want Pool lab", got)
	}

	b.do("create policy lab for alice",
		chromedp.Navigate(base+"/admin/policies/new"),
		chromedp.WaitVisible(chromedp.CSS("#name")),
		chromedp.SendKeys(chromedp.CSS("#name"), "lab"),
		chromedp.Click(chromedp.CSS(`input[name="pools"][value="lab"]`)),
		chromedp.SendKeys(chromedp.CSS("#users"), "alice"),
		chromedp.Submit(chromedp.CSS("#name")),
		chromedp.WaitVisible(chromedp.CSS(".flash")),
	)

	// The status page refreshes itself: the pool's desktop appears.
	b.do("status page shows lab", chromedp.Navigate(base+"/admin"), chromedp.WaitVisible(chromedp.CSS(`tr[data-pool="lab"]`)))
	deadline := time.Now().Add(60 * time.Second)
	for b.text(`tr[data-pool="lab"] .total`) == "0" {
		if time.Now().After(deadline) {
			b.shot("lab never got a desktop")
			t.Fatal("the status page never showed a desktop in pool lab")
		}
		time.Sleep(500 * time.Millisecond)
	}
	b.shot("lab has its desktop")

	// alice now sees lab on My desktops (the policy simulator agrees).
	b.do("simulate alice", chromedp.Navigate(base+"/admin/policies/simulate?user=alice"), chromedp.WaitVisible(chromedp.CSS("main table")))
	if got := b.text("main table"); !strings.Contains(got, "lab") || !strings.Contains(got, "demo") {
		t.Errorf("the simulator for alice shows %q, want pools lab and demo", got)
	}

	// Every admin page renders without a script error, and every control
	// on it has a label.
	for _, path := range []string{"/admin", "/admin/desktops", "/admin/pools", "/admin/pools/new", "/admin/policies", "/admin/policies/new",
		"/admin/hosts", "/admin/users", "/admin/users/new", "/admin/groups", "/admin/roles", "/admin/jobs", "/admin/audit", "/admin/settings", "/account"} {
		b.do("open "+path, chromedp.Navigate(base+path), chromedp.WaitVisible(chromedp.CSS("h1")))
		if h := b.text("h1"); h == "Not found" || h == "Something went wrong" || h == "Not allowed" {
			t.Errorf("%s: the page says %q", path, h)
		}
		b.checkLabels(path)
	}
}
