package server

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"lobby/internal/lobby"
)

// TestBrowserClusterHealth: an operator opens the Cluster health page
// from the nav: it shows each check, a dead node's failure with its cause
// and fix, and downloads the report as an HTML file.
func TestBrowserClusterHealth(t *testing.T) {
	t.Parallel()
	chromiumPath(t)
	s, base := node(t, "sqlite", 0)
	admin := login(t, base, "admin", adminPW)
	admin.want(201, "POST", "/api/v1/users", map[string]any{"username": "olga", "password": "operator password", "role": "operator"}, nil)
	b := newBrowser(t, base)
	b.signIn("olga", "operator password")

	b.do("open the health page from the nav",
		chromedp.Navigate(base+"/admin"),
		chromedp.WaitVisible(chromedp.CSS(`nav a[href="/admin/health"]`)),
		chromedp.Click(chromedp.CSS(`nav a[href="/admin/health"]`)),
		chromedp.WaitVisible(chromedp.CSS("#health-checks")),
	)
	if got := b.text("h1"); got != "Cluster health" {
		t.Fatalf("the page heading is %q", got)
	}
	// The node probes its own address within a few seconds: until then
	// that check waits; then everything passes.
	deadline := time.Now().Add(60 * time.Second)
	for !strings.EqualFold(b.text("#health-status"), "ok") {
		if time.Now().After(deadline) {
			b.shot("never healthy")
			t.Fatalf("the page never showed a healthy cluster: %s", b.text("#health-checks"))
		}
		time.Sleep(time.Second)
		b.do("check again", chromedp.Click(chromedp.CSS("#health-again")), chromedp.WaitVisible(chromedp.CSS("#health-checks")))
	}
	if got := b.text(`tr[data-check="clock/1"]`); !strings.Contains(got, "the database's") {
		t.Errorf("the clock row says %q", got)
	}
	b.checkLabels("/admin/health")

	// A node that died long ago: its row fails, with the cause and the fix.
	dead := &lobby.Node{SiteID: 7, Name: "gone", Address: "http://127.0.0.1:1", Version: "old", Started: time.Now().Add(-time.Hour), Heartbeat: time.Now().Add(-time.Hour)}
	if err := s.Store.RegisterNode(context.Background(), dead, "old", time.Now()); err != nil {
		t.Fatal(err)
	}
	b.do("check again with a dead node", chromedp.Click(chromedp.CSS("#health-again")), chromedp.WaitVisible(chromedp.CSS(`tr[data-check="node/7"]`)))
	if got := b.text("#health-status"); !strings.EqualFold(got, "fail") {
		t.Errorf("the summary says %q with a dead node, want fail", got)
	}
	row := b.text(`tr[data-check="node/7"]`)
	if !strings.Contains(row, "node 7 (gone) is dead") || !strings.Contains(row, "Likely cause:") || !strings.Contains(row, "Fix:") || !strings.Contains(row, "lobby nodes remove 7") {
		t.Errorf("the dead node's row says %q", row)
	}
	if got := b.text(`tr[data-node="7"]`); !strings.Contains(got, "dead") {
		t.Errorf("the nodes table's row of node 7 says %q", got)
	}

	// The download is the report as a file of its own.
	res := b.eval(`fetch(document.getElementById("health-download").href).then(async r => [r.status, r.headers.get("Content-Disposition"), await r.text()])`)
	got, _ := res.([]any)
	if len(got) != 3 || got[0] != float64(200) || !strings.HasPrefix(got[1].(string), `attachment; filename="lobby-health-`) ||
		!strings.Contains(got[2].(string), "Lobby cluster health") || !strings.Contains(got[2].(string), "node 7 (gone) is dead") {
		t.Errorf("the download answered %v", res)
	}
}
