package server

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"lobby/internal/agent"
	"lobby/internal/linkproto"
	"lobby/internal/lobby"
	"lobby/internal/provider/memory"
)

// TestBrowserAdminAddsAndRevokesAHost: an administrator makes a join
// token in the form and copies it from the page; a host agent joins with
// it and links to the node; the links page shows it up with its upstream
// hubs; revoking the host on its page cuts the link.
func TestBrowserAdminAddsAndRevokesAHost(t *testing.T) {
	t.Parallel()
	chromiumPath(t)
	s, base := node(t, "sqlite", 0)
	b := newBrowser(t, base)
	confirms := acceptDialogs(b)
	b.signIn("admin", adminPW)

	b.do("token form with a bad expiry",
		chromedp.Navigate(base+"/admin/tokens"),
		chromedp.WaitVisible(chromedp.CSS("#expires_in")),
		chromedp.SetValue(chromedp.CSS("#expires_in"), "someday"),
		chromedp.Submit(chromedp.CSS("#expires_in")),
		chromedp.WaitVisible(chromedp.CSS("#expires_in-error")),
	)
	if got := b.text("#expires_in-error"); !strings.Contains(got, "not a duration") {
		t.Errorf("expiry error = %q, want it to ask for a duration", got)
	}
	b.checkLabels("/admin/tokens")

	b.do("create a token",
		chromedp.SetValue(chromedp.CSS("#expires_in"), "2h"),
		chromedp.SetValue(chromedp.CSS("#uses"), "1"),
		chromedp.SendKeys(chromedp.CSS("#note"), "browser host"),
		chromedp.Submit(chromedp.CSS("#expires_in")),
		chromedp.WaitVisible(chromedp.CSS("#join-token")),
		chromedp.Click(chromedp.CSS(`button[data-copy="join-token"]`)),
	)
	b.checkLabels("/admin/tokens after create")
	deadline := time.Now().Add(10 * time.Second)
	for b.text("#copy-status") == "" {
		if time.Now().After(deadline) {
			t.Fatal("the Copy button said nothing")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got := b.text("#copy-status"); got != "Copied." && !strings.Contains(got, "Ctrl+C") {
		t.Errorf("after Copy the page says %q", got)
	}
	token, _ := b.eval(`document.getElementById("join-token").value`).(string)
	if _, err := linkproto.ParseJoinToken(token); err != nil {
		t.Fatalf("the page's token %q: %v", token, err)
	}
	if sel, _ := b.eval(`(() => { const e = document.getElementById("join-token"); return e.value.substring(e.selectionStart, e.selectionEnd) })()`).(string); sel != token {
		t.Errorf("after Copy the field's selection is %q, want the whole token", sel)
	}
	cmd, _ := b.eval(`document.getElementById("join-command").value`).(string)
	if want := "lobby agent --join " + token + " --hub " + base + " --data /var/lib/lobby-agent"; cmd != want {
		t.Errorf("the command line is %q, want %q", cmd, want)
	}

	// A host agent joins with the copied token and links out to the node.
	prov, err := memory.New(memory.Config{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := agent.New(agent.Config{Name: "host-b", DataDir: t.TempDir(), Provider: prov, Release: "agent-test",
		Logger: slog.New(slog.DiscardHandler), BackoffMin: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond,
		Hubs: []linkproto.HubSetting{
			{URL: base, Ping: linkproto.Duration(time.Second), AutoConnect: true},
			{URL: "https://127.0.0.1:1", NameMask: "hub2.*.example.com", Ping: linkproto.Duration(2 * time.Second), SecureOnly: true},
		}})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Join(context.Background(), token); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- a.Run(ctx) }()
	t.Cleanup(cancel)

	b.do("links page shows host-b up",
		chromedp.Navigate(base+"/admin/links"),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-link="host-b"] .badge.up`)),
	)
	b.checkLabels("/admin/links")
	ups := b.text(`tr[data-upstreams="host-b"]`)
	for _, want := range []string{base, "https://127.0.0.1:1", "hub2.*.example.com", "1s", "2s", "on", "off", "yes"} {
		if !strings.Contains(ups, want) {
			t.Errorf("host-b's upstream hubs read %q, want %q in them", ups, want)
		}
	}
	if row := b.text(`tr[data-link="host-b"]`); !strings.Contains(row, " ms") || !strings.Contains(row, "agent-test") {
		t.Errorf("host-b's link row reads %q, want a round trip in ms and the agent's release", row)
	}

	b.do("hosts page lists host-b",
		chromedp.Navigate(base+"/admin/hosts"),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-host="host-b"]`)),
	)
	b.checkLabels("/admin/hosts")
	b.do("open host-b",
		chromedp.Click(chromedp.CSS(`tr[data-host="host-b"] a`)),
		chromedp.WaitVisible(chromedp.CSS(`form[action$="/revoke"] button`)),
	)
	b.checkLabels("/admin/hosts/host-b")
	b.do("revoke host-b",
		chromedp.Click(chromedp.CSS(`form[action$="/revoke"] button`)),
		chromedp.WaitVisible(chromedp.CSS(".flash")),
	)
	if got := b.text(".flash"); !strings.Contains(got, "revoked") {
		t.Errorf("after Revoke the page says %q", got)
	}
	if got := confirms(); len(got) != 1 || !strings.Contains(got[0], "cuts its link at once; it must join again") {
		t.Errorf("the Revoke button asked %q, want one confirmation that says the link is cut", got)
	}
	select {
	case err := <-stopped:
		if err == nil {
			t.Error("the revoked agent stopped without an error")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the revoked agent kept running")
	}

	b.do("links page no longer shows host-b up",
		chromedp.Navigate(base+"/admin/links"),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-refused="host-b"]`)),
	)
	if n := b.eval(`document.querySelectorAll('tr[data-link="host-b"]').length`); n != float64(0) {
		t.Errorf("after the revocation the links page still lists host-b as linked")
	}
	if h, err := s.Store.GetHostByName(context.Background(), "host-b"); err != nil || !h.Revoked {
		t.Errorf("host-b after the revocation: %+v, %v", h, err)
	}
	eventually(t, "host-b down", func() bool {
		h, err := s.Store.GetHostByName(context.Background(), "host-b")
		return err == nil && h.State == lobby.HostDown
	})
}

// acceptDialogs answers yes to every confirm() on the browser's page and
// returns a function listing the questions asked.
func acceptDialogs(b *browser) func() []string {
	var mu sync.Mutex
	var asked []string
	dialogs := chromedp.Events(b.ctx, cdppage.JavascriptDialogOpening)
	go func() {
		for ev, err := range dialogs {
			if err != nil {
				return
			}
			mu.Lock()
			asked = append(asked, ev.Message)
			mu.Unlock()
			_, _ = chromedp.Call(b.ctx, cdppage.HandleJavaScriptDialog, cdppage.HandleJavaScriptDialogParams{Accept: true})
		}
	}()
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), asked...)
	}
}
