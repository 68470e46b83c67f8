package server

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// The browser tests drive Debian's chromium headless through the pages as
// a person would: sign in, connect to a real Xvnc desktop in the browser,
// administer pools and policies, and be refused without the role.

// browser is one headless chromium (its own profile, so its own cookies).
// Every step is screenshotted; the screenshots are kept when the test
// fails (or LOBBY_KEEP_SCREENSHOTS is set) and the directory is named in
// the log.
type browser struct {
	t    *testing.T
	ctx  context.Context
	base string
	dir  string
	step int
}

func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "chromium is missing: run `make test`, which installs Debian's chromium"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

func newBrowser(t *testing.T, base string) *browser {
	t.Helper()
	exe := chromiumPath(t)
	shots, err := os.MkdirTemp("", "lobby-browser-"+regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(t.Name(), "-")+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("LOBBY_KEEP_SCREENSHOTS") != "" {
			t.Logf("screenshots of each step: %s", shots)
			return
		}
		os.RemoveAll(shots)
	})
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900), chromedp.Flag("disable-dev-shm-usage", true))
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithLogf(func(string, ...any) {}))
	t.Cleanup(func() { cancel(); acancel() })
	// The first run starts the browser on the long-lived context.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	// Script errors and refused loads (a Content-Security-Policy violation
	// is one) fail the test: a page that works by accident is not tested.
	var mu sync.Mutex
	var problems []string
	err = chromedp.Listen(ctx, func(ev any) {
		var msg string
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			msg = fmt.Sprintf("script error: %s", d.Text)
			if d.Exception != nil {
				msg += " " + d.Exception.Description
			}
			msg += fmt.Sprintf(" at %s:%d", d.URL, d.LineNumber+1)
		case *cdplog.EventEntryAdded:
			if ev.Entry.Level == "error" && ev.Entry.Source != "network" {
				msg = fmt.Sprintf("%s error: %s (%s)", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL)
			}
		}
		if msg != "" {
			mu.Lock()
			problems = append(problems, msg)
			mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, p := range problems {
			t.Errorf("the browser reported %s", p)
		}
	})
	return &browser{t: t, ctx: ctx, base: base, dir: shots}
}

// do runs one named step with a deadline and screenshots the page after.
func (b *browser) do(step string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 60*time.Second)
	defer cancel()
	err := chromedp.Do(ctx, actions...)
	b.shot(step)
	if err != nil {
		b.t.Fatalf("step %q: %v", step, err)
	}
}

func (b *browser) shot(step string) {
	b.step++
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		return
	}
	name := fmt.Sprintf("%02d-%s.png", b.step, regexp.MustCompile(`[^a-z0-9]+`).ReplaceAllString(strings.ToLower(step), "-"))
	_ = os.WriteFile(filepath.Join(b.dir, name), buf, 0o644)
}

func (b *browser) text(sel string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.shot("text of " + sel)
		b.t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

func (b *browser) eval(js string) any {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[any](js, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

func (b *browser) signIn(user, pw string) {
	b.t.Helper()
	b.do("sign in as "+user,
		chromedp.Navigate(b.base+"/login"),
		chromedp.WaitVisible(chromedp.CSS("#username")),
		chromedp.SendKeys(chromedp.CSS("#username"), user),
		chromedp.SendKeys(chromedp.CSS("#password"), pw),
		chromedp.Submit(chromedp.CSS("#password")),
		chromedp.WaitVisible(chromedp.CSS(".who")),
	)
}

// desktopPixels screenshots the noVNC canvas and measures it: a real
// desktop (twm's frame and an xterm on a black root) has lit pixels in
// several colours; a blank or error canvas is one flat colour.
func (b *browser) desktopPixels() (lit float64, colours int) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	buf, err := chromedp.Run(ctx, chromedp.Screenshot(chromedp.CSS("#screen canvas"), chromedp.NodeVisible))
	if err != nil {
		b.t.Fatalf("screenshot the desktop canvas: %v", err)
	}
	img, err := png.Decode(bytes.NewReader(buf))
	if err != nil {
		b.t.Fatalf("decode the canvas screenshot: %v", err)
	}
	return measure(img)
}

func measure(img image.Image) (litShare float64, colours int) {
	seen := map[uint32]bool{}
	n, lit := 0, 0
	r := img.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y += 2 {
		for x := r.Min.X; x < r.Max.X; x += 2 {
			cr, cg, cb, _ := img.At(x, y).RGBA()
			n++
			if (cr>>8)+(cg>>8)+(cb>>8) > 3*48 {
				lit++
			}
			if len(seen) < 1000 {
				seen[(cr>>11)<<10|(cg>>11)<<5|(cb>>11)] = true
			}
		}
	}
	if n == 0 {
		return 0, 0
	}
	return float64(lit) / float64(n), len(seen)
}

// browserNode starts `lobby dev`'s wiring with one real desktop and a
// user, alice, whom the demo policy covers.
func browserNode(t *testing.T) (*Server, string) {
	t.Helper()
	requireDesktops(t)
	chromiumPath(t)
	data := sharedDir(t)
	s, base := start(t, Config{
		Listen: "127.0.0.1:0", DataDir: data, PlainHTTP: true, AdminPassword: adminPW,
		LocalAgent: true, Demo: 1, Logger: testLogger(t),
	})
	t.Cleanup(func() {
		ctx := context.Background()
		ds, _ := s.agent.prov.List(ctx)
		for _, d := range ds {
			if err := s.agent.prov.Delete(ctx, d.Name); err != nil {
				t.Errorf("delete %s: %v", d.Name, err)
			}
		}
	})
	admin := login(t, base, "admin", adminPW)
	admin.want(201, "POST", "/api/v1/users", map[string]any{"username": "alice", "password": "alice password", "role": "user"}, nil)
	eventually(t, "the demo desktop running", func() bool {
		var p struct{ Counts struct{ Free int } }
		admin.want(200, "GET", "/api/v1/pools/demo", nil, &p)
		return p.Counts.Free == 1
	})
	return s, base
}

func TestBrowserUserConnectsToARealDesktop(t *testing.T) {
	t.Parallel()
	s, base := browserNode(t)
	b := newBrowser(t, base)
	b.signIn("alice", "alice password")
	b.do("my desktops lists demo", chromedp.WaitVisible(chromedp.CSS(`button[aria-label="Connect to demo"]`)))
	if got := b.text(".offer .badge"); got != "Ready" {
		t.Errorf("demo's state on My desktops = %q, want Ready", got)
	}
	b.do("connect in the browser",
		chromedp.Click(chromedp.CSS(`button[aria-label="Connect to demo"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#desktop-app[data-state="connected"]`)),
		chromedp.WaitVisible(chromedp.CSS("#screen canvas")),
	)
	waitPixels := func(what string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			lit, colours := b.desktopPixels()
			if lit > 0.003 && colours >= 4 {
				return
			}
			if time.Now().After(deadline) {
				b.shot(what)
				t.Fatalf("%s: the canvas shows %.2f%% lit pixels in %d colours; want a drawn desktop (>0.3%%, >=4 colours)", what, lit*100, colours)
			}
			time.Sleep(300 * time.Millisecond)
		}
	}
	waitPixels("desktop pixels arrived")
	b.shot("desktop drawn")

	// A network blip: the node drops the console connection; the page gets
	// a new ticket and reconnects to the same desktop.
	desktopID := b.eval(`document.getElementById("desktop-app").dataset.desktop`).(string)
	if n := s.Gateway.End(desktopID); n != 1 {
		t.Fatalf("gateway ended %d sessions, want the page's 1", n)
	}
	b.do("reconnect after a blip",
		chromedp.WaitVisible(chromedp.CSS(`#desktop-app[data-state="reconnecting"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#desktop-app[data-state="connected"]`)),
	)
	if again := b.eval(`document.getElementById("desktop-app").dataset.desktop`).(string); again != desktopID {
		t.Fatalf("after reconnecting the page shows desktop %s, want the same %s", again, desktopID)
	}
	waitPixels("desktop pixels after reconnecting")

	b.do("log off",
		chromedp.Click(chromedp.CSS(".bar button.secondary")),
		chromedp.WaitVisible(chromedp.CSS(".flash")),
	)
	if got := b.text(".flash"); !strings.Contains(got, "logged off") {
		t.Errorf("after log off the page says %q, want it to say you are logged off", got)
	}
	admin := login(t, base, "admin", adminPW)
	var as struct{ Items []any }
	admin.want(200, "GET", "/api/v1/assignments", nil, &as)
	if len(as.Items) != 0 {
		t.Errorf("after log off %d assignments remain, want the demo policy to release on logoff", len(as.Items))
	}
}

func TestBrowserRefusesWithoutTheRole(t *testing.T) {
	t.Parallel()
	_, base := browserNode(t)
	b := newBrowser(t, base)
	b.signIn("alice", "alice password")
	if nav := b.text("header.top"); strings.Contains(nav, "Pools") || strings.Contains(nav, "Users") {
		t.Errorf("a user's navigation shows admin pages: %q", nav)
	}
	b.do("open the pools page", chromedp.Navigate(base+"/admin/pools"), chromedp.WaitVisible(chromedp.CSS("h1")))
	if got := b.text("h1"); got != "Not allowed" {
		t.Errorf("a user opening /admin/pools sees %q, want Not allowed", got)
	}
	// The action itself, posted with a valid CSRF token, is refused too.
	status := b.eval(`fetch("/admin/pools", {method: "POST", headers: {"Content-Type": "application/x-www-form-urlencoded"},
		body: "csrf=" + encodeURIComponent(document.querySelector('meta[name="csrf-token"]').content) + "&name=sneaky&max_size=1"}).then(r => r.status)`)
	if status != float64(403) {
		t.Errorf("a user posting the pool form got %v, want 403", status)
	}

	// My desktops on a phone: nothing wider than the screen, and the
	// Connect button reachable from the keyboard alone.
	b.do("my desktops on a phone",
		chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile),
		chromedp.Navigate(base+"/desktops"),
		chromedp.WaitVisible(chromedp.CSS(`button[aria-label="Connect to demo"]`)),
	)
	if over := b.eval(`document.documentElement.scrollWidth - window.innerWidth`); over != float64(0) {
		t.Errorf("on a 390 px wide screen the page is %v px too wide", over)
	}
	b.checkLabels("my desktops")
	for i := 0; ; i++ {
		if i == 15 {
			t.Fatal("15 presses of Tab never reached the Connect button")
		}
		b.do("tab", chromedp.KeyEvent("\t"))
		if b.eval(`document.activeElement.getAttribute("aria-label")`) == "Connect to demo" {
			break
		}
	}
	b.do("connect with the keyboard", chromedp.KeyEvent("\r"), chromedp.WaitVisible(chromedp.CSS(`#desktop-app[data-state="connected"]`)))
}

// checkLabels fails the test for any visible form control without a label
// (screen readers announce nothing for it).
func (b *browser) checkLabels(where string) {
	b.t.Helper()
	unlabelled := b.eval(`[...document.querySelectorAll("input:not([type=hidden]), select, textarea")]
		.filter(e => e.labels.length === 0 && !e.getAttribute("aria-label")).map(e => e.name || e.id).join(",")`)
	if unlabelled != "" {
		b.t.Errorf("%s: form controls without a label: %v", where, unlabelled)
	}
}
