package manage

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"lobby/internal/lobby"
	"lobby/internal/store"
)

// UserInput is what a client may set on a user.
type UserInput struct {
	Username string     `json:"username"`
	Password string     `json:"password"`
	Groups   []string   `json:"groups"`
	Role     lobby.Role `json:"role"`
	Disabled bool       `json:"disabled"`
}

// User looks a user up by username, then by ID.
func (s *Service) User(ctx context.Context, ref string) (*lobby.User, error) {
	u, _, err := s.Store.GetUserByName(ctx, ref)
	if errors.Is(err, store.ErrNotFound) {
		u, err = s.Store.GetUser(ctx, ref)
	}
	return u, StoreErr(err, fmt.Sprintf("user %q", ref))
}

func validRole(r lobby.Role) error {
	if !r.Valid() {
		return lobby.FieldErrorf("role", "role %q is not valid: use user, operator or admin", r)
	}
	return nil
}

func validGroups(gs []string) ([]string, error) {
	out := make([]string, 0, len(gs))
	for _, g := range gs {
		g = strings.TrimSpace(g)
		if g == "" {
			continue
		}
		// Directory groups ("Domain Users") have spaces and capitals; only
		// the separators of our forms and CLI are refused.
		if len(g) > 256 || strings.ContainsAny(g, ",\n\r\t") {
			return nil, lobby.FieldErrorf("groups", "group %q is not valid: at most 256 characters, no commas or line breaks", g)
		}
		out = append(out, g)
	}
	return out, nil
}

func userDetail(u *lobby.User) string {
	return fmt.Sprintf("user %s, role %s, groups %s, disabled %t", u.Username, u.Role, strings.Join(u.Groups, ","), u.Disabled)
}

// CreateUser validates, hashes the password and creates a local user.
func (s *Service) CreateUser(ctx context.Context, a Actor, in UserInput) (*lobby.User, error) {
	if err := Allow(a, lobby.PermManageUsers); err != nil {
		return nil, err
	}
	if in.Role == "" {
		in.Role = lobby.RoleUser
	}
	if err := lobby.ValidUsername(in.Username); err != nil {
		return nil, err
	}
	if err := validRole(in.Role); err != nil {
		return nil, err
	}
	groups, err := validGroups(in.Groups)
	if err != nil {
		return nil, err
	}
	if err := lobby.ValidPassword(in.Password); err != nil {
		return nil, err
	}
	hash, err := s.Hasher.Hash(ctx, in.Password)
	if err != nil {
		return nil, err
	}
	u := &lobby.User{Username: in.Username, Role: in.Role, Groups: groups, Disabled: in.Disabled, Created: s.now()}
	err = s.Store.InTx(ctx, func(q store.Queries) error {
		if err := q.CreateUser(ctx, u, hash); errors.Is(err, store.ErrConflict) {
			return &lobby.Error{Kind: lobby.KindConflict, Field: "username", Message: fmt.Sprintf("user %q already exists: choose another username", u.Username)}
		} else if err != nil {
			return StoreErr(err, fmt.Sprintf("user %q", u.Username))
		}
		return s.audit(ctx, q, a, "user.create", u.ID, userDetail(u))
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

// UpdateUser applies edit to the user's role, groups and disabled flag.
// Disabling a user revokes their tokens; the last administrator cannot be
// demoted or disabled.
func (s *Service) UpdateUser(ctx context.Context, a Actor, ref string, edit func(*UserInput) error) (*lobby.User, error) {
	if err := Allow(a, lobby.PermManageUsers); err != nil {
		return nil, err
	}
	u, err := s.User(ctx, ref)
	if err != nil {
		return nil, err
	}
	in := UserInput{Username: u.Username, Groups: u.Groups, Role: u.Role, Disabled: u.Disabled}
	if err := edit(&in); err != nil {
		return nil, err
	}
	if in.Username != u.Username {
		return nil, lobby.FieldErrorf("username", "usernames cannot be changed: create a new user instead")
	}
	if in.Password != "" {
		return nil, lobby.FieldErrorf("password", "set passwords with POST /api/v1/users/{id}/password")
	}
	if err := validRole(in.Role); err != nil {
		return nil, err
	}
	groups, err := validGroups(in.Groups)
	if err != nil {
		return nil, err
	}
	demotes := u.Role == lobby.RoleAdmin && (in.Role != lobby.RoleAdmin || in.Disabled)
	u.Role, u.Groups, u.Disabled = in.Role, groups, in.Disabled
	err = s.Store.InTx(ctx, func(q store.Queries) error {
		if demotes {
			if err := lastAdmin(ctx, q, u.Username); err != nil {
				return err
			}
		}
		if err := q.UpdateUser(ctx, u); err != nil {
			return StoreErr(err, fmt.Sprintf("user %q", u.Username))
		}
		if u.Disabled {
			if err := q.RevokeUserTokens(ctx, u.ID); err != nil {
				return err
			}
		}
		return s.audit(ctx, q, a, "user.update", u.ID, userDetail(u))
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

// lastAdmin refuses to remove the only administrator left.
func lastAdmin(ctx context.Context, q store.Queries, name string) error {
	n, err := q.CountUsersWithRole(ctx, lobby.RoleAdmin)
	if err != nil {
		return err
	}
	if n <= 1 {
		return lobby.Errorf(lobby.KindConflict, "%s is the last administrator: make another administrator first", name)
	}
	return nil
}

// DeleteUser deletes a user who holds no desktop.
func (s *Service) DeleteUser(ctx context.Context, a Actor, ref string) error {
	if err := Allow(a, lobby.PermManageUsers); err != nil {
		return err
	}
	u, err := s.User(ctx, ref)
	if err != nil {
		return err
	}
	if u.ID == a.User.ID {
		return lobby.Errorf(lobby.KindConflict, "you cannot delete yourself")
	}
	return s.Store.InTx(ctx, func(q store.Queries) error {
		if u.Role == lobby.RoleAdmin {
			if err := lastAdmin(ctx, q, u.Username); err != nil {
				return err
			}
		}
		as, err := q.ListAssignments(ctx, store.AssignmentFilter{UserID: u.ID})
		if err != nil {
			return err
		}
		if len(as) > 0 {
			return lobby.Errorf(lobby.KindConflict, "user %s still holds %d desktop(s): release them first", u.Username, len(as))
		}
		if err := q.RevokeUserTokens(ctx, u.ID); err != nil {
			return err
		}
		if err := q.DeleteUser(ctx, u.ID); err != nil {
			return StoreErr(err, fmt.Sprintf("user %q", u.Username))
		}
		return s.audit(ctx, q, a, "user.delete", u.ID, "user "+u.Username)
	})
}

// SetPassword lets a user change their own password and a user manager
// change anyone's.
func (s *Service) SetPassword(ctx context.Context, a Actor, ref, password string) error {
	if err := Allow(a, lobby.PermConnect); err != nil {
		return err
	}
	manager := a.User.Role.Can(lobby.PermManageUsers)
	u, err := s.User(ctx, ref)
	if err != nil && manager {
		return err
	}
	if err != nil || (u.ID != a.User.ID && !manager) {
		return lobby.Errorf(lobby.KindForbidden, "you may only change your own password")
	}
	if err := lobby.ValidPassword(password); err != nil {
		return err
	}
	hash, err := s.Hasher.Hash(ctx, password)
	if err != nil {
		return err
	}
	return s.Store.InTx(ctx, func(q store.Queries) error {
		if err := q.SetPassword(ctx, u.ID, hash); err != nil {
			return StoreErr(err, fmt.Sprintf("user %q", u.Username))
		}
		return s.audit(ctx, q, a, "user.password", u.ID, "password of "+u.Username+" changed")
	})
}
