package web

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"lobby/internal/httpjson"
	"lobby/internal/lobby"
)

//go:embed all:templates
var templateFS embed.FS

// pageTemplate is one page: the layout, the shared partials and the page's
// own file, which defines "content" and any fragments htmx asks for.
type pageTemplate struct{ t *template.Template }

// mustParsePages parses every templates/*.html but the layout and partials
// into its own page; a broken template is a bug caught by any test.
func mustParsePages() map[string]*pageTemplate {
	base := template.Must(template.New("").Funcs(templateFuncs()).ParseFS(templateFS, "templates/_*.html"))
	files, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		panic(err)
	}
	pages := map[string]*pageTemplate{}
	for _, f := range files {
		name := strings.TrimSuffix(path.Base(f), ".html")
		if strings.HasPrefix(name, "_") {
			continue
		}
		t := template.Must(template.Must(base.Clone()).ParseFS(templateFS, f))
		pages[name] = &pageTemplate{t: t}
	}
	return pages
}

// view is what every page template gets.
type view struct {
	Title       string
	Page        string
	User        *lobby.User
	CSRF        string
	Version     string
	Maintenance string // why the node is in maintenance mode, or ""
	Flash       string
	RequestID   string
	Data        any
}

// On reports whether the page is in the nav section named by prefix
// (admin_desktop matches the desktops list and a desktop's page).
func (v view) On(prefix string) bool { return strings.HasPrefix(v.Page, prefix) }

// Can reports whether the signed-in user's role holds perm.
func (v view) Can(perm string) bool {
	return v.User != nil && v.User.Role.Can(lobby.Permission(perm))
}

func (s *Server) view(w http.ResponseWriter, r *http.Request, page, title string, data any) view {
	v := view{Title: title, Page: page, Version: s.Version, RequestID: requestID(r), Data: data}
	if sess := sessionOf(r); sess != nil {
		v.User, v.CSRF = sess.User, sess.csrfToken()
	}
	if s.Maintenance != nil {
		v.Maintenance = s.Maintenance()
	}
	if w != nil && !isHTMX(r) {
		v.Flash = s.takeFlash(w, r)
	}
	return v
}

// render writes a whole page.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, page, title string, data any) error {
	return s.execute(w, r, status, page, "layout", s.view(w, r, page, title, data))
}

// fragment writes one named template of a page (an htmx swap).
func (s *Server) fragment(w http.ResponseWriter, r *http.Request, page, name string, data any) error {
	return s.execute(w, r, http.StatusOK, page, name, s.view(w, r, page, "", data))
}

func (s *Server) execute(w http.ResponseWriter, r *http.Request, status int, page, name string, v view) error {
	pt, ok := s.pages[page]
	if !ok {
		return fmt.Errorf("no template %q", page)
	}
	// Render to a buffer so a template error becomes an error page, not a
	// half-written one.
	var buf bytes.Buffer
	if err := pt.t.ExecuteTemplate(&buf, name, v); err != nil {
		return fmt.Errorf("render %s/%s: %w", page, name, err)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, err := w.Write(buf.Bytes())
	return err
}

type errorData struct {
	Status  int
	Heading string
	Message string
}

// fail answers an error as a page (or, for htmx, as a message swapped into
// the page's message area). Internal errors are logged with the request ID
// the page shows, so a report can be matched to the log.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	kind := lobby.ErrorKind(err)
	if kind == lobby.KindUnauthorized && sessionOf(r) == nil && r.URL.Path != "/login" {
		s.toLogin(w, r)
		return
	}
	status := httpjson.Status(err)
	d := errorData{Status: status, Message: lobby.ErrorMessage(err)}
	switch kind {
	case lobby.KindNotFound:
		d.Heading = "Not found"
	case lobby.KindForbidden:
		d.Heading = "Not allowed"
	case lobby.KindMaintenance:
		d.Heading = "Maintenance"
	case lobby.KindInternal:
		d.Heading = "Something went wrong"
		d.Message = "Something went wrong on our side. If it happens again, give your administrator this request ID: " + requestID(r)
		s.Logger.Error("page failed", "request_id", requestID(r), "method", r.Method, "path", r.URL.Path, "err", err)
	default:
		d.Heading = "That did not work"
	}
	if isHTMX(r) {
		w.Header().Set("HX-Retarget", "#messages")
		w.Header().Set("HX-Reswap", "innerHTML")
		if rerr := s.execute(w, r, status, "error", "message", s.view(nil, r, "error", d.Heading, d)); rerr != nil {
			http.Error(w, d.Message, status)
		}
		return
	}
	if rerr := s.render(w, r, status, "error", d.Heading, d); rerr != nil {
		s.Logger.Error("render error page", "request_id", requestID(r), "err", rerr)
		http.Error(w, d.Message, status)
	}
}

// form keeps what a person typed and the errors to show next to each field.
type form struct {
	Values url.Values
	Errors map[string]string
	Error  string // not about one field
}

func newForm() *form { return &form{Values: url.Values{}, Errors: map[string]string{}} }

// formOf copies the posted values but the CSRF token and passwords, which
// are never echoed back.
func formOf(r *http.Request) *form {
	f := newForm()
	for k, v := range r.PostForm {
		if k == "csrf" || k == "password" || k == "password2" {
			continue
		}
		f.Values[k] = v
	}
	return f
}

// Get is a field's value as typed.
func (f *form) Get(name string) string { return f.Values.Get(name) }

// Has reports whether a multi-value field (checkboxes) holds v.
func (f *form) Has(name, v string) bool {
	for _, x := range f.Values[name] {
		if x == v {
			return true
		}
	}
	return false
}

// Err is the error to show next to a field.
func (f *form) Err(name string) string { return f.Errors[name] }

// Fail files err next to its field, or at the top of the form.
func (f *form) Fail(err error) {
	if field := lobby.ErrorField(err); field != "" {
		f.Errors[field] = lobby.ErrorMessage(err)
		return
	}
	f.Error = lobby.ErrorMessage(err)
}

// Failed reports whether any error was filed.
func (f *form) Failed() bool { return f.Error != "" || len(f.Errors) > 0 }

func templateFuncs() template.FuncMap {
	fm := template.FuncMap{
		"ago":   ago,
		"when":  func(t time.Time) string { return t.Local().Format("2006-01-02 15:04:05") },
		"join":  strings.Join,
		"add":   func(a, b int) int { return a + b },
		"query": func(v url.Values) template.URL { return template.URL(v.Encode()) },
	}
	for k, v := range adminFuncs() {
		fm[k] = v
	}
	return fm
}

// ago says how long ago t was, roughly.
func ago(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := time.Since(t)
	switch {
	case d < 0:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	}
	return fmt.Sprintf("%dd ago", int(d.Hours()/24))
}
