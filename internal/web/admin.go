package web

import (
	"cmp"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"lobby/internal/lobby"
)

// adminRoutes are the admin console's pages. Each is wrapped with the
// permission its API twin needs; manage checks again on every change.
func (s *Server) adminRoutes(mux *http.ServeMux) {
	mux.Handle("GET /admin", s.page(lobby.PermRead, s.dashboard))
	mux.Handle("GET /admin/status", s.page(lobby.PermRead, s.dashboardFragment))

	mux.Handle("GET /admin/pools", s.page(lobby.PermRead, s.poolsPage))
	mux.Handle("GET /admin/pools/new", s.page(lobby.PermConfigure, s.poolNew))
	mux.Handle("POST /admin/pools", s.page(lobby.PermConfigure, s.poolCreate))
	mux.Handle("GET /admin/pools/{ref}", s.page(lobby.PermRead, s.poolPage))
	mux.Handle("POST /admin/pools/{ref}", s.page(lobby.PermConfigure, s.poolUpdate))
	mux.Handle("POST /admin/pools/{ref}/delete", s.page(lobby.PermConfigure, s.poolDelete))

	s.adminMoreRoutes(mux)
	s.adminLinkRoutes(mux)
	s.adminHealthRoutes(mux)
}

// adminFuncs are the template functions of the admin pages.
func adminFuncs() template.FuncMap {
	fm := template.FuncMap{
		"sortURL": sortURL,
		"pageURL": pageURL,
		"pct": func(part, whole int) int {
			if whole <= 0 {
				return 0
			}
			return part * 100 / whole
		},
	}
	for k, v := range adminMoreFuncs() {
		fm[k] = v
	}
	for k, v := range linkFuncs() {
		fm[k] = v
	}
	return fm
}

// listQuery is how an admin list is filtered, sorted and paged: from the
// URL, so every view can be bookmarked and shared.
type listQuery struct {
	Values url.Values
	Sort   string
	Desc   bool
	Page   int
	Per    int
}

func listQueryOf(r *http.Request, defaultSort string) listQuery {
	q := r.URL.Query()
	lq := listQuery{Values: q, Sort: q.Get("sort"), Desc: q.Get("dir") == "desc", Page: 1, Per: 50}
	if lq.Sort == "" {
		lq.Sort = defaultSort
	}
	if p, err := strconv.Atoi(q.Get("page")); err == nil && p > 0 {
		lq.Page = p
	}
	if n, err := strconv.Atoi(q.Get("per")); err == nil && n > 0 && n <= 500 {
		lq.Per = n
	}
	return lq
}

// Get is a filter's value.
func (lq listQuery) Get(k string) string { return lq.Values.Get(k) }

// paged is one page of a sorted list.
type paged[T any] struct {
	Items      []T
	Total      int
	Page, Last int
	Query      listQuery
}

// sortPage sorts items by the query's column (keys maps a column to a
// key function) and cuts the page. Lists are read whole and sorted here:
// an admin list of a few thousand rows sorts in well under a millisecond.
func sortPage[T any](items []T, lq listQuery, keys map[string]func(T) string) paged[T] {
	key, ok := keys[lq.Sort]
	if ok {
		slices.SortStableFunc(items, func(a, b T) int {
			c := compareNatural(key(a), key(b))
			if lq.Desc {
				return -c
			}
			return c
		})
	}
	p := paged[T]{Total: len(items), Page: lq.Page, Query: lq}
	p.Last = max(1, (len(items)+lq.Per-1)/lq.Per)
	p.Page = min(p.Page, p.Last)
	lo := (p.Page - 1) * lq.Per
	p.Items = items[lo:min(lo+lq.Per, len(items))]
	return p
}

// compareNatural orders numbers by value and text case-insensitively, so
// demo-2 comes before demo-10.
func compareNatural(a, b string) int {
	na, ea := strconv.Atoi(a)
	nb, eb := strconv.Atoi(b)
	if ea == nil && eb == nil {
		return cmp.Compare(na, nb)
	}
	pa, sa := splitNum(a)
	pb, sb := splitNum(b)
	if c := cmp.Compare(strings.ToLower(pa), strings.ToLower(pb)); c != 0 || sa < 0 || sb < 0 {
		if c != 0 {
			return c
		}
		return cmp.Compare(strings.ToLower(a), strings.ToLower(b))
	}
	return cmp.Compare(sa, sb)
}

// splitNum splits "demo-12" into "demo-" and 12 (-1 when there is no
// trailing number).
func splitNum(s string) (string, int) {
	i := len(s)
	for i > 0 && s[i-1] >= '0' && s[i-1] <= '9' {
		i--
	}
	if i == len(s) || len(s)-i > 9 {
		return s, -1
	}
	n, _ := strconv.Atoi(s[i:])
	return s[:i], n
}

// sortURL links a column header: the same filters, sorted by col, flipping
// the direction when col is already the sort.
func sortURL(lq listQuery, col string) template.URL {
	v := url.Values{}
	for k, vs := range lq.Values {
		v[k] = vs
	}
	v.Set("sort", col)
	v.Del("page")
	if lq.Sort == col && !lq.Desc {
		v.Set("dir", "desc")
	} else {
		v.Del("dir")
	}
	return template.URL("?" + v.Encode())
}

// pageURL links another page of the same view.
func pageURL(lq listQuery, page int) template.URL {
	v := url.Values{}
	for k, vs := range lq.Values {
		v[k] = vs
	}
	v.Set("page", strconv.Itoa(page))
	return template.URL("?" + v.Encode())
}

// formInt reads an integer field, filing an error next to it when it is
// not a number.
func formInt(r *http.Request, f *form, name string) int {
	v := strings.TrimSpace(r.PostFormValue(name))
	if v == "" {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		f.Errors[name] = "enter a whole number"
	}
	return n
}

// splitList reads a comma or newline separated field.
func splitList(v string) []string {
	var out []string
	for _, p := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == '\n' || r == '\r' }) {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
