package server

import (
	"crypto/tls"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"lobby/internal/provider/memory"
	"lobby/internal/syncbuf"
)

// page is a browser-like client of the pages: a cookie jar, no redirects
// followed unless asked, and the CSRF token read from the last page.
type page struct {
	t    *testing.T
	base string
	c    *http.Client
	csrf string
}

func newPage(t *testing.T, base string) *page {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	return &page{t: t, base: base, c: &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}},
	}}
}

var csrfRE = regexp.MustCompile(`name="csrf-token" content="([^"]+)"`)

// do sends a request and returns the status, the body and the response.
func (p *page) do(method, path string, form url.Values, hdr ...string) (int, string, *http.Response) {
	p.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, p.base+path, body)
	if err != nil {
		p.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := p.c.Do(req)
	if err != nil {
		p.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if m := csrfRE.FindSubmatch(b); m != nil {
		p.csrf = string(m[1])
	}
	return res.StatusCode, string(b), res
}

func (p *page) signIn(user, pw string) {
	p.t.Helper()
	code, body, _ := p.do("POST", "/login", url.Values{"username": {user}, "password": {pw}})
	if code != http.StatusSeeOther {
		p.t.Fatalf("sign in as %s: got %d: %s", user, code, body)
	}
	p.do("GET", "/desktops", nil)
}

func TestPagesSignIn(t *testing.T) {
	t.Parallel()
	_, base := node(t, "sqlite", 0)
	admin := login(t, base, "admin", adminPW)

	p := newPage(t, base)
	code, body, res := p.do("GET", "/", nil)
	if code != http.StatusSeeOther || res.Header.Get("Location") != "/login" {
		t.Fatalf("a visitor at / got %d to %q, want 303 to /login", code, res.Header.Get("Location"))
	}
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("Content-Security-Policy = %q, want only the node's own scripts", csp)
	}

	// Wrong passwords: a clear message, the username kept, audited, and
	// after five the account is throttled even with the right password.
	for i := range 5 {
		code, body, _ = p.do("POST", "/login", url.Values{"username": {"admin"}, "password": {"wrong password"}})
		if code != http.StatusUnauthorized || !strings.Contains(body, `value="admin"`) {
			t.Fatalf("wrong password %d: got %d, want 401 keeping the username; body: %s", i+1, code, body)
		}
	}
	code, body, res = p.do("POST", "/login", url.Values{"username": {"admin"}, "password": {adminPW}})
	if code != http.StatusTooManyRequests || !strings.Contains(body, "too many failed sign-ins") || res.Header.Get("Retry-After") == "" {
		t.Fatalf("sixth attempt: got %d (Retry-After %q), want 429 saying too many failed sign-ins", code, res.Header.Get("Retry-After"))
	}
	// The API's sign-in shares the throttle.
	var apiAnswer struct{ Error struct{ Code string } }
	if code := (&apiClient{t: t, base: base}).call("POST", "/api/v1/login", map[string]string{"username": "admin", "password": adminPW}, &apiAnswer); code != http.StatusTooManyRequests || apiAnswer.Error.Code != "rate_limited" {
		t.Errorf("API sign-in of the throttled account: got %d %q, want 429 rate_limited", code, apiAnswer.Error.Code)
	}
	var audit struct {
		Items []struct{ Action, Remote string }
	}
	admin.want(200, "GET", "/api/v1/audit?q=login_", nil, &audit)
	failed, throttled := 0, 0
	for _, e := range audit.Items {
		switch e.Action {
		case "user.login_failed":
			failed++
		case "user.login_throttled":
			throttled++
		}
	}
	if failed != 5 || throttled != 2 {
		t.Errorf("audit has %d failed and %d throttled sign-ins, want 5 and 2 (pages and API)", failed, throttled)
	}

	// Another user signs in fine; the cookie is HttpOnly and SameSite.
	admin.want(201, "POST", "/api/v1/users", map[string]any{"username": "bob", "password": "bob password", "role": "user"}, nil)
	code, _, res = p.do("POST", "/login", url.Values{"username": {"bob"}, "password": {"bob password"}, "next": {"/account"}})
	if code != http.StatusSeeOther || res.Header.Get("Location") != "/account" {
		t.Fatalf("bob signs in: got %d to %q, want 303 to /account", code, res.Header.Get("Location"))
	}
	var cookie *http.Cookie
	for _, c := range res.Cookies() {
		if c.Name == "lobby_session" {
			cookie = c
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteLaxMode || cookie.Secure {
		t.Fatalf("session cookie = %+v, want HttpOnly, SameSite=Lax, not Secure over plain HTTP", cookie)
	}
	// An open redirect is refused.
	code, _, res = newPage(t, base).do("POST", "/login", url.Values{"username": {"bob"}, "password": {"bob password"}, "next": {"//evil.example/"}})
	if code != http.StatusSeeOther || res.Header.Get("Location") != "/" {
		t.Errorf("next=//evil.example/ redirected to %q, want /", res.Header.Get("Location"))
	}

	// Signing out revokes the session: the old cookie no longer works.
	p.do("GET", "/desktops", nil)
	old := *cookie
	if code, _, _ = p.do("POST", "/logout", url.Values{"csrf": {p.csrf}}); code != http.StatusSeeOther {
		t.Fatalf("sign out: got %d", code)
	}
	stale := newPage(t, base)
	u, _ := url.Parse(base)
	stale.c.Jar.SetCookies(u, []*http.Cookie{&old})
	if code, _, res = stale.do("GET", "/desktops", nil); code != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/login") {
		t.Errorf("the signed-out cookie got %d to %q, want a redirect to sign in", code, res.Header.Get("Location"))
	}
}

func TestPagesSecureCookieOverHTTPS(t *testing.T) {
	t.Parallel()
	prov, err := memory.New(memory.Config{})
	if err != nil {
		t.Fatal(err)
	}
	_, base := start(t, Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), AdminPassword: adminPW, LocalAgent: true, Provider: prov,
		Logger: testLogger(t)})
	p := newPage(t, base)
	_, _, res := p.do("POST", "/login", url.Values{"username": {"admin"}, "password": {adminPW}})
	for _, c := range res.Cookies() {
		if c.Name == "lobby_session" && !c.Secure {
			t.Fatal("over HTTPS the session cookie is not Secure")
		}
	}
	if res.Header.Get("Strict-Transport-Security") == "" {
		t.Error("over HTTPS there is no Strict-Transport-Security header")
	}
}

func TestPagesCSRFAndCrossOrigin(t *testing.T) {
	t.Parallel()
	_, base := node(t, "sqlite", 1)
	admin := login(t, base, "admin", adminPW)
	eventually(t, "the demo desktop ready", func() bool {
		var pl struct{ Counts struct{ Free int } }
		admin.want(200, "GET", "/api/v1/pools/demo", nil, &pl)
		return pl.Counts.Free == 1
	})
	p := newPage(t, base)
	p.signIn("admin", adminPW)

	tests := []struct {
		name string
		form url.Values
		hdr  []string
		want int
	}{
		{"no token", url.Values{"pool": {"demo"}}, nil, http.StatusForbidden},
		{"wrong token", url.Values{"pool": {"demo"}, "csrf": {"forged"}}, nil, http.StatusForbidden},
		{"cross-site origin", url.Values{"pool": {"demo"}, "csrf": {p.csrf}}, []string{"Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"}, http.StatusForbidden},
		{"token in the header", url.Values{"pool": {"demo"}}, []string{"X-CSRF-Token", p.csrf}, http.StatusSeeOther},
	}
	for _, tc := range tests {
		code, body, _ := p.do("POST", "/connect", tc.form, tc.hdr...)
		if code != tc.want {
			t.Errorf("%s: POST /connect got %d, want %d; body: %.300s", tc.name, code, tc.want, body)
		}
	}
	// Cross-site sign-in posts are refused before any password is checked.
	code, _, _ := newPage(t, base).do("POST", "/login", url.Values{"username": {"admin"}, "password": {adminPW}}, "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site")
	if code != http.StatusForbidden {
		t.Errorf("cross-site sign-in got %d, want 403", code)
	}
}

func TestPagesPortal(t *testing.T) {
	t.Parallel()
	_, base := node(t, "sqlite", 1)
	admin := login(t, base, "admin", adminPW)
	admin.want(201, "POST", "/api/v1/users", map[string]any{"username": "carol", "password": "carol password", "role": "user"}, nil)
	eventually(t, "the demo desktop ready", func() bool {
		var pl struct{ Counts struct{ Free int } }
		admin.want(200, "GET", "/api/v1/pools/demo", nil, &pl)
		return pl.Counts.Free == 1
	})
	// The administrators' banner shows on everyone's My desktops.
	ap := newPage(t, base)
	ap.signIn("admin", adminPW)
	if code, body, _ := ap.do("POST", "/admin/settings", url.Values{"csrf": {ap.csrf}, "banner": {"Maintenance on Friday <b>evening</b>"}}); code != http.StatusSeeOther && code != http.StatusOK {
		t.Fatalf("set the banner: got %d: %.300s", code, body)
	}
	p := newPage(t, base)
	p.signIn("carol", "carol password")
	code, body, _ := p.do("GET", "/desktops", nil)
	if code != 200 || !strings.Contains(body, `aria-label="Connect to demo"`) || !strings.Contains(body, "Ready") {
		t.Fatalf("My desktops: got %d without a ready demo pool: %.500s", code, body)
	}
	if !strings.Contains(body, `class="banner"`) || !strings.Contains(body, "Maintenance on Friday &lt;b&gt;evening&lt;/b&gt;") {
		t.Errorf("My desktops does not show the banner, escaped: %.800s", body)
	}
	// The live part is a fragment, not a page.
	code, body, _ = p.do("GET", "/desktops/offers", nil, "HX-Request", "true")
	if code != 200 || strings.Contains(body, "<html") || !strings.Contains(body, `id="offers"`) {
		t.Errorf("the offers fragment: got %d: %.300s", code, body)
	}

	code, _, res := p.do("POST", "/connect", url.Values{"pool": {"demo"}, "csrf": {p.csrf}})
	if code != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/desktop/") {
		t.Fatalf("connect: got %d to %q, want the desktop page", code, res.Header.Get("Location"))
	}
	desk := res.Header.Get("Location")
	// The API's offers say the same: demo, by the demo policy, held by carol.
	var offers struct {
		Items []struct {
			Pool    struct{ Name string }
			Policy  string
			Holding *struct {
				DesktopID string `json:"desktop_id"`
			}
		}
	}
	login(t, base, "carol", "carol password").want(200, "GET", "/api/v1/offers", nil, &offers)
	if len(offers.Items) != 1 || offers.Items[0].Pool.Name != "demo" || offers.Items[0].Policy != "demo" ||
		offers.Items[0].Holding == nil || "/desktop/"+offers.Items[0].Holding.DesktopID != desk {
		t.Errorf("GET /api/v1/offers = %+v, want demo by policy demo, holding %s", offers.Items, desk)
	}
	if code, body, _ = p.do("GET", desk, nil); code != 200 || !strings.Contains(body, `/static/desktop.js`) {
		t.Fatalf("desktop page: got %d", code)
	}
	code, body, _ = p.do("POST", desk+"/ticket", nil, "X-CSRF-Token", p.csrf)
	if code != 200 || !strings.Contains(body, `"/gateway/vnc?ticket=tkt_`) {
		t.Fatalf("ticket: got %d: %s", code, body)
	}

	// Someone else asking for a ticket to carol's desktop learns nothing.
	other := newPage(t, base)
	other.signIn("admin", adminPW)
	if code, body, _ = other.do("POST", desk+"/ticket", nil, "X-CSRF-Token", other.csrf); code != http.StatusGone || !strings.Contains(body, `"gone":true`) {
		t.Errorf("another user's ticket request: got %d %s, want 410 gone", code, body)
	}
	// The pool is now used up: a second person gets the reason on the page.
	admin.want(201, "POST", "/api/v1/users", map[string]any{"username": "dave", "password": "dave password", "role": "user"}, nil)
	dave := newPage(t, base)
	dave.signIn("dave", "dave password")
	if code, body, _ = dave.do("POST", "/connect", url.Values{"pool": {"demo"}, "csrf": {dave.csrf}}); code != http.StatusConflict || !strings.Contains(body, "no free desktop") && !strings.Contains(body, "exhausted") {
		t.Errorf("connect to a used-up pool: got %d: %.400s", code, body)
	}

	// Log off runs the release plan (the demo policy releases on logoff).
	code, _, res = p.do("POST", desk+"/release", url.Values{"csrf": {p.csrf}})
	if code != http.StatusSeeOther || res.Header.Get("Location") != "/desktops" {
		t.Fatalf("log off: got %d to %q", code, res.Header.Get("Location"))
	}
	if _, body, _ = p.do("GET", "/desktops", nil); !strings.Contains(body, "went back to its pool") {
		t.Errorf("after log off the page does not say the desktop went back: %.600s", body)
	}
	if code, _, _ = p.do("POST", desk+"/ticket", nil, "X-CSRF-Token", p.csrf); code != http.StatusGone {
		t.Errorf("a ticket after log off: got %d, want 410", code)
	}
}

func TestPagesErrors(t *testing.T) {
	t.Parallel()
	var logs syncbuf.Buffer
	prov, err := memory.New(memory.Config{})
	if err != nil {
		t.Fatal(err)
	}
	s, base := start(t, Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), PlainHTTP: true, AdminPassword: adminPW,
		LocalAgent: true, Provider: prov, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	p := newPage(t, base)
	p.signIn("admin", adminPW)

	code, body, _ := p.do("GET", "/no/such/page", nil)
	if code != http.StatusNotFound || !strings.Contains(body, "<h1>Not found</h1>") {
		t.Errorf("unknown page: got %d: %.300s", code, body)
	}
	if code, _, _ = p.do("GET", "/admin/pools/nope", nil); code != http.StatusNotFound {
		t.Errorf("unknown pool: got %d, want 404", code)
	}
	// Account form: a wrong current password is shown next to its field.
	code, body, _ = p.do("POST", "/account/password", url.Values{"csrf": {p.csrf}, "current": {"nope"}, "password": {"a new password"}, "password2": {"a new password"}})
	if code != http.StatusBadRequest || !strings.Contains(body, `id="current-error"`) {
		t.Errorf("wrong current password: got %d: %.300s", code, body)
	}

	// A server error shows a request ID that is also in the log.
	s.Store.Close()
	code, body, res := p.do("GET", "/admin/pools", nil)
	id := res.Header.Get("X-Request-ID")
	if code != http.StatusInternalServerError || id == "" || !strings.Contains(body, id) {
		t.Fatalf("with the store closed: got %d (request %q): %.400s", code, id, body)
	}
	if !strings.Contains(logs.String(), "request_id="+id) {
		t.Errorf("the log does not name request %s:\n%s", id, logs.String())
	}
}
