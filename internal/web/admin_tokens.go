package web

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"lobby/internal/httpjson"
	"lobby/internal/manage"
	"lobby/internal/store"
)

// tokenTTLChoices are the lifetimes the form suggests; any duration
// from 1 minute to 30 days may be typed.
var tokenTTLChoices = []string{"1h", "24h", "7d", "30d"}

// tokenRow is a join token as the list shows it: never its hash.
type tokenRow struct {
	ID, Note, CreatedBy string
	Created, Expires    time.Time
	Uses, MaxUses       int
	State               string // manage.TokenState
}

// Active reports whether the token can still admit a host.
func (t tokenRow) Active() bool { return t.State == manage.TokenActive }

// newToken is a token just created: its string is shown on this one
// page and never again.
type newToken struct {
	ID, Token, Command string
}

type tokensData struct {
	Form    *form
	Choices []string
	Tokens  paged[tokenRow]
	Created *newToken
}

func (s *Server) tokenRows(ctx context.Context, a manage.Actor, lq listQuery) (paged[tokenRow], error) {
	ts, err := store.All(func(o store.ListOptions) ([]store.JoinToken, error) { return s.Manage.ListJoinTokens(ctx, a, o) },
		func(t store.JoinToken) string { return t.ID })
	if err != nil {
		return paged[tokenRow]{}, err
	}
	now := s.Now()
	rows := make([]tokenRow, 0, len(ts))
	for i := range ts {
		t := &ts[i]
		rows = append(rows, tokenRow{ID: t.ID, Note: t.Note, CreatedBy: t.CreatedBy, Created: t.Created, Expires: t.Expires,
			Uses: t.Uses, MaxUses: t.MaxUses, State: manage.TokenState(t, now)})
	}
	stamp := func(t time.Time) string { return t.UTC().Format("20060102150405.000000") }
	return sortPage(rows, lq, map[string]func(tokenRow) string{
		"created": func(t tokenRow) string { return stamp(t.Created) },
		"expires": func(t tokenRow) string { return stamp(t.Expires) },
		"state":   func(t tokenRow) string { return t.State },
		"note":    func(t tokenRow) string { return t.Note },
	}), nil
}

// tokenQuery is the list's order: newest first unless asked otherwise.
func tokenQuery(r *http.Request) listQuery {
	lq := listQueryOf(r, "created")
	if r.URL.Query().Get("sort") == "" {
		lq.Desc = true
	}
	return lq
}

func (s *Server) renderTokens(w http.ResponseWriter, r *http.Request, status int, f *form, created *newToken) error {
	rows, err := s.tokenRows(r.Context(), s.actor(r), tokenQuery(r))
	if err != nil {
		return err
	}
	d := &tokensData{Form: f, Choices: tokenTTLChoices, Tokens: rows, Created: created}
	return s.render(w, r, status, "admin_tokens", "Join tokens", d)
}

func defaultTokenForm() *form {
	f := newForm()
	f.Values.Set("expires_in", "24h")
	f.Values.Set("uses", "1")
	return f
}

func (s *Server) tokensPage(w http.ResponseWriter, r *http.Request) error {
	return s.renderTokens(w, r, http.StatusOK, defaultTokenForm(), nil)
}

// tokenCreate issues a token and answers with the page that shows it,
// once: there is no redirect, so the token is in no URL and no later page.
func (s *Server) tokenCreate(w http.ResponseWriter, r *http.Request) error {
	f, err := parseForm(w, r)
	if err != nil {
		return err
	}
	spec := manage.JoinTokenSpec{Note: r.PostFormValue("note")}
	if spec.TTL, err = manage.ParseTokenTTL(r.PostFormValue("expires_in")); err != nil {
		f.Fail(err)
	}
	if uses := strings.TrimSpace(r.PostFormValue("uses")); uses != "" {
		spec.Uses = formInt(r, f, "uses")
		if f.Err("uses") == "" {
			if err := manage.ValidTokenUses(spec.Uses); err != nil {
				f.Fail(err)
			}
		}
	}
	if f.Failed() {
		return s.renderTokens(w, r, http.StatusBadRequest, f, nil)
	}
	token, t, err := s.Manage.CreateJoinToken(r.Context(), s.actor(r), spec)
	if err != nil {
		if !formError(err) {
			return err
		}
		f.Fail(err)
		return s.renderTokens(w, r, httpjson.Status(err), f, nil)
	}
	created := &newToken{ID: t.ID, Token: token,
		Command: "lobby agent --join " + token + " --hub " + nodeURL(r) + " --data /var/lib/lobby-agent"}
	return s.renderTokens(w, r, http.StatusCreated, defaultTokenForm(), created)
}

// tokenClass is a token state as a CSS class ("used up" → "used-up").
func tokenClass(state string) string { return strings.ReplaceAll(state, " ", "-") }

func (s *Server) tokenRevoke(w http.ResponseWriter, r *http.Request) error {
	if _, err := parseForm(w, r); err != nil {
		return err
	}
	id := r.PathValue("id")
	if err := s.Manage.RevokeJoinToken(r.Context(), s.actor(r), id); err != nil {
		return err
	}
	return s.redirectBack(w, r, "/admin/tokens", "Join token "+id+" revoked: no host can join with it now.")
}

// until says how long until t, roughly ("in 23h"), or how long ago it
// passed ("expired 2h ago").
func until(t time.Time) string {
	d := time.Until(t)
	switch {
	case d <= 0:
		return "expired " + ago(t)
	case d < time.Minute:
		return "in " + strconv.Itoa(int(d.Seconds())) + "s"
	case d < time.Hour:
		return "in " + strconv.Itoa(int(d.Minutes())) + "m"
	case d < 48*time.Hour:
		return "in " + strconv.Itoa(int(d.Hours())) + "h"
	}
	return "in " + strconv.Itoa(int(d.Hours()/24)) + "d"
}
