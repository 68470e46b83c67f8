package web

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"lobby/internal/httpjson"
	"lobby/internal/lobby"
	"lobby/internal/manage"
	"lobby/internal/store"
)

var roles = []lobby.Role{lobby.RoleUser, lobby.RoleOperator, lobby.RoleAdmin}

func (s *Server) allUsers(ctx context.Context) ([]lobby.User, error) {
	return store.All(func(o store.ListOptions) ([]lobby.User, error) { return s.Store.ListUsers(ctx, o) },
		func(u lobby.User) string { return u.ID })
}

type usersData struct {
	List   paged[lobby.User]
	Groups []string
	Roles  []lobby.Role
}

// usersPage lists users filtered by group, role and a part of the name.
func (s *Server) usersPage(w http.ResponseWriter, r *http.Request) error {
	users, err := s.allUsers(r.Context())
	if err != nil {
		return err
	}
	lq := listQueryOf(r, "username")
	group, role := lq.Get("group"), lobby.Role(lq.Get("role"))
	name := strings.ToLower(strings.TrimSpace(lq.Get("q")))
	seen := map[string]bool{}
	var groups []string
	kept := users[:0:0]
	for _, u := range users {
		for _, g := range u.Groups {
			if !seen[g] {
				seen[g] = true
				groups = append(groups, g)
			}
		}
		switch {
		case group != "" && !slices.Contains(u.Groups, group),
			role != "" && u.Role != role,
			name != "" && !strings.Contains(strings.ToLower(u.Username), name):
			continue
		}
		kept = append(kept, u)
	}
	slices.SortFunc(groups, compareNatural)
	d := usersData{Groups: groups, Roles: roles}
	d.List = sortPage(kept, lq, map[string]func(lobby.User) string{
		"username": func(u lobby.User) string { return u.Username },
		"role":     func(u lobby.User) string { return string(u.Role) },
		"created":  func(u lobby.User) string { return u.Created.UTC().Format("20060102150405.000") },
	})
	return s.render(w, r, http.StatusOK, "admin_users", "Users", d)
}

type userFormData struct {
	Form     *form // role, groups, disabled (and username, password when new)
	Password *form // the password reset
	Account  *lobby.User
	Desktops []lobby.Desktop
	Roles    []lobby.Role
	Self     bool // the signed-in user's own account
}

func userFormOf(u *lobby.User) *form {
	f := newForm()
	f.Values.Set("username", u.Username)
	f.Values.Set("role", string(u.Role))
	f.Values.Set("groups", strings.Join(u.Groups, ", "))
	if u.Disabled {
		f.Values.Set("disabled", "on")
	}
	return f
}

func (s *Server) userData(r *http.Request, ref string, f, pw *form) (*userFormData, error) {
	ctx := r.Context()
	u, err := s.Manage.User(ctx, ref)
	if err != nil {
		return nil, err
	}
	if f == nil {
		f = userFormOf(u)
	}
	if pw == nil {
		pw = newForm()
	}
	d := &userFormData{Form: f, Password: pw, Account: u, Roles: roles, Self: u.ID == sessionOf(r).User.ID}
	as, err := s.Store.ListAssignments(ctx, store.AssignmentFilter{UserID: u.ID})
	if err != nil {
		return nil, err
	}
	for _, a := range as {
		if dk, err := s.Store.GetDesktop(ctx, a.DesktopID); err == nil {
			d.Desktops = append(d.Desktops, *dk)
		}
	}
	return d, nil
}

func (s *Server) renderUser(w http.ResponseWriter, r *http.Request, status int, d *userFormData) error {
	return s.render(w, r, status, "admin_user", "User "+d.Account.Username, d)
}

func (s *Server) userNew(w http.ResponseWriter, r *http.Request) error {
	f := newForm()
	f.Values.Set("role", string(lobby.RoleUser))
	return s.render(w, r, http.StatusOK, "admin_user", "New user", &userFormData{Form: f, Roles: roles})
}

func (s *Server) userCreate(w http.ResponseWriter, r *http.Request) error {
	f, err := parseForm(w, r)
	if err != nil {
		return err
	}
	in := manage.UserInput{
		Username: strings.TrimSpace(r.PostFormValue("username")),
		Password: r.PostFormValue("password"),
		Role:     lobby.Role(r.PostFormValue("role")),
		Groups:   splitList(r.PostFormValue("groups")),
		Disabled: r.PostFormValue("disabled") != "",
	}
	u, err := s.Manage.CreateUser(r.Context(), s.actor(r), in)
	if err == nil {
		return s.redirectBack(w, r, "/admin/users/"+url.PathEscape(pathRef(u.Username, u.ID)), "User "+u.Username+" created.")
	}
	if !formError(err) {
		return err
	}
	f.Fail(err)
	return s.render(w, r, httpjson.Status(err), "admin_user", "New user", &userFormData{Form: f, Roles: roles})
}

func (s *Server) userPage(w http.ResponseWriter, r *http.Request) error {
	d, err := s.userData(r, r.PathValue("ref"), nil, nil)
	if err != nil {
		return err
	}
	return s.renderUser(w, r, http.StatusOK, d)
}

func (s *Server) userUpdate(w http.ResponseWriter, r *http.Request) error {
	f, err := parseForm(w, r)
	if err != nil {
		return err
	}
	ref := r.PathValue("ref")
	u, err := s.Manage.UpdateUser(r.Context(), s.actor(r), ref, func(in *manage.UserInput) error {
		in.Role = lobby.Role(r.PostFormValue("role"))
		in.Groups = splitList(r.PostFormValue("groups"))
		in.Disabled = r.PostFormValue("disabled") != ""
		return nil
	})
	if err == nil {
		return s.redirectBack(w, r, "/admin/users/"+url.PathEscape(pathRef(u.Username, u.ID)), "User "+u.Username+" saved.")
	}
	return s.userFailed(w, r, f, nil, err)
}

// userFailed shows the user page again with err on the form it is about.
func (s *Server) userFailed(w http.ResponseWriter, r *http.Request, f, pw *form, err error) error {
	if !formError(err) {
		return err
	}
	if pw != nil {
		pw.Fail(err)
	} else {
		f.Fail(err)
	}
	d, derr := s.userData(r, r.PathValue("ref"), f, pw)
	if derr != nil {
		return derr
	}
	if f != nil {
		f.Values.Set("username", d.Account.Username)
	}
	return s.renderUser(w, r, httpjson.Status(err), d)
}

func (s *Server) userPassword(w http.ResponseWriter, r *http.Request) error {
	pw, err := parseForm(w, r)
	if err != nil {
		return err
	}
	ref := r.PathValue("ref")
	password := r.PostFormValue("password")
	if password != r.PostFormValue("password2") {
		return s.userFailed(w, r, nil, pw, lobby.FieldErrorf("password2", "the two passwords differ: type the same password twice"))
	}
	if err := s.Manage.SetPassword(r.Context(), s.actor(r), ref, password); err != nil {
		return s.userFailed(w, r, nil, pw, err)
	}
	return s.redirectBack(w, r, "/admin/users/"+url.PathEscape(ref), "Password changed.")
}

func (s *Server) userDelete(w http.ResponseWriter, r *http.Request) error {
	f, err := parseForm(w, r)
	if err != nil {
		return err
	}
	u, err := s.Manage.User(r.Context(), r.PathValue("ref"))
	if err != nil {
		return err
	}
	if err := s.Manage.DeleteUser(r.Context(), s.actor(r), u.ID); err != nil {
		// The edit form shows the user as stored, the reason on top.
		f = userFormOf(u)
		return s.userFailed(w, r, f, nil, err)
	}
	return s.redirectBack(w, r, "/admin/users", "User "+u.Username+" deleted.")
}
