package web

import (
	"net/http"
	"slices"

	"lobby/internal/lobby"
)

// groupRow is a group name as users and policies use it. Groups are not
// stored apart: a group exists while a user or a policy names it.
type groupRow struct {
	Name     string
	Members  int
	Policies []policyLink
}

// policyLink names a policy and how to link it.
type policyLink struct{ Name, Ref string }

func (s *Server) groupsPage(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	users, err := s.allUsers(ctx)
	if err != nil {
		return err
	}
	pols, err := s.allPolicies(ctx)
	if err != nil {
		return err
	}
	byName := map[string]*groupRow{}
	get := func(name string) *groupRow {
		g, ok := byName[name]
		if !ok {
			g = &groupRow{Name: name}
			byName[name] = g
		}
		return g
	}
	for _, u := range users {
		for _, g := range u.Groups {
			get(g).Members++
		}
	}
	for _, p := range pols {
		for _, g := range p.Groups {
			if gr := get(g); !slices.ContainsFunc(gr.Policies, func(l policyLink) bool { return l.Name == p.Name }) {
				gr.Policies = append(gr.Policies, policyLink{Name: p.Name, Ref: pathRef(p.Name, p.ID)})
			}
		}
	}
	rows := make([]groupRow, 0, len(byName))
	for _, g := range byName {
		slices.SortFunc(g.Policies, func(a, b policyLink) int { return compareNatural(a.Name, b.Name) })
		rows = append(rows, *g)
	}
	slices.SortFunc(rows, func(a, b groupRow) int { return compareNatural(a.Name, b.Name) })
	return s.render(w, r, http.StatusOK, "admin_groups", "Groups", rows)
}

// permissions are every permission, in the order the roles page lists
// them, with what each allows.
var permissions = []struct {
	Perm lobby.Permission
	Text string
}{
	{lobby.PermConnect, "get and use the desktops their policies offer"},
	{lobby.PermRead, "see hosts, desktops, pools, policies, jobs and the audit log"},
	{lobby.PermOperate, "run power actions, assign desktops by hand, retry and cancel jobs"},
	{lobby.PermConfigure, "change pools, policies and settings"},
	{lobby.PermManageUsers, "create, change and delete users; see groups and roles"},
}

type roleRow struct {
	Role  lobby.Role
	Users int
	Can   []bool // per permissions entry
}

type rolesData struct {
	Roles       []roleRow
	Permissions []struct {
		Perm lobby.Permission
		Text string
	}
}

// rolesPage shows the fixed roles, what each may do and who holds it.
func (s *Server) rolesPage(w http.ResponseWriter, r *http.Request) error {
	d := rolesData{Permissions: permissions}
	for _, role := range roles {
		n, err := s.Store.CountUsersWithRole(r.Context(), role)
		if err != nil {
			return err
		}
		row := roleRow{Role: role, Users: n}
		for _, p := range permissions {
			row.Can = append(row.Can, role.Can(p.Perm))
		}
		d.Roles = append(d.Roles, row)
	}
	return s.render(w, r, http.StatusOK, "admin_roles", "Roles", d)
}
