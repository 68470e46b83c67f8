package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"lobby/internal/httpjson"
	"lobby/internal/lobby"
	"lobby/internal/store"
)

type userInput struct {
	Username string     `json:"username"`
	Password string     `json:"password"`
	Groups   []string   `json:"groups"`
	Role     lobby.Role `json:"role"`
	Disabled bool       `json:"disabled"`
}

func (s *Server) userByRef(ctx context.Context, ref string) (*lobby.User, error) {
	u, _, err := s.Store.GetUserByName(ctx, ref)
	if errors.Is(err, store.ErrNotFound) {
		u, err = s.Store.GetUser(ctx, ref)
	}
	return u, storeErr(err, fmt.Sprintf("user %q", ref))
}

func validRole(r lobby.Role) error {
	if !r.Valid() {
		return lobby.Errorf(lobby.KindInvalid, "role %q is not valid: use user, operator or admin", r)
	}
	return nil
}

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request) error {
	opt, err := page(r)
	if err != nil {
		return err
	}
	us, err := s.Store.ListUsers(r.Context(), opt)
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, paged(us, opt, func(u lobby.User) string { return u.ID }))
	return nil
}

func (s *Server) getUser(w http.ResponseWriter, r *http.Request) error {
	u, err := s.userByRef(r.Context(), r.PathValue("ref"))
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, u)
	return nil
}

func (s *Server) createUser(w http.ResponseWriter, r *http.Request) error {
	in := userInput{Role: lobby.RoleUser}
	if err := httpjson.Decode(w, r, &in); err != nil {
		return err
	}
	if err := lobby.ValidUsername(in.Username); err != nil {
		return err
	}
	if err := validRole(in.Role); err != nil {
		return err
	}
	if err := lobby.ValidPassword(in.Password); err != nil {
		return err
	}
	hash, err := s.Auth.Hasher.Hash(r.Context(), in.Password)
	if err != nil {
		return err
	}
	u := &lobby.User{Username: in.Username, Role: in.Role, Groups: nonNil(in.Groups), Disabled: in.Disabled, Created: s.Auth.Now()}
	err = s.Store.InTx(r.Context(), func(q store.Queries) error {
		if err := q.CreateUser(r.Context(), u, hash); err != nil {
			return storeErr(err, fmt.Sprintf("user %q", u.Username))
		}
		return s.audit(r, q, "user.create", u.ID, fmt.Sprintf("user %s, role %s, groups %s", u.Username, u.Role, strings.Join(u.Groups, ",")))
	})
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusCreated, u)
	return nil
}

func (s *Server) updateUser(w http.ResponseWriter, r *http.Request) error {
	u, err := s.userByRef(r.Context(), r.PathValue("ref"))
	if err != nil {
		return err
	}
	in := userInput{Username: u.Username, Groups: u.Groups, Role: u.Role, Disabled: u.Disabled}
	if err := httpjson.Decode(w, r, &in); err != nil {
		return err
	}
	if in.Username != u.Username {
		return lobby.Errorf(lobby.KindInvalid, "usernames cannot be changed: create a new user instead")
	}
	if in.Password != "" {
		return lobby.Errorf(lobby.KindInvalid, "set passwords with POST /api/v1/users/{id}/password")
	}
	if err := validRole(in.Role); err != nil {
		return err
	}
	demotes := u.Role == lobby.RoleAdmin && (in.Role != lobby.RoleAdmin || in.Disabled)
	u.Role, u.Groups, u.Disabled = in.Role, nonNil(in.Groups), in.Disabled
	err = s.Store.InTx(r.Context(), func(q store.Queries) error {
		if demotes {
			if err := lastAdmin(r.Context(), q, u.Username); err != nil {
				return err
			}
		}
		if err := q.UpdateUser(r.Context(), u); err != nil {
			return storeErr(err, fmt.Sprintf("user %q", u.Username))
		}
		if u.Disabled {
			if err := q.RevokeUserTokens(r.Context(), u.ID); err != nil {
				return err
			}
		}
		return s.audit(r, q, "user.update", u.ID, fmt.Sprintf("user %s, role %s, groups %s, disabled %t", u.Username, u.Role, strings.Join(u.Groups, ","), u.Disabled))
	})
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, u)
	return nil
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

func (s *Server) deleteUser(w http.ResponseWriter, r *http.Request) error {
	u, err := s.userByRef(r.Context(), r.PathValue("ref"))
	if err != nil {
		return err
	}
	if u.ID == userOf(r).ID {
		return lobby.Errorf(lobby.KindConflict, "you cannot delete yourself")
	}
	err = s.Store.InTx(r.Context(), func(q store.Queries) error {
		if u.Role == lobby.RoleAdmin {
			if err := lastAdmin(r.Context(), q, u.Username); err != nil {
				return err
			}
		}
		as, err := q.ListAssignments(r.Context(), store.AssignmentFilter{UserID: u.ID})
		if err != nil {
			return err
		}
		if len(as) > 0 {
			return lobby.Errorf(lobby.KindConflict, "user %s still holds %d desktop(s): release them first", u.Username, len(as))
		}
		if err := q.RevokeUserTokens(r.Context(), u.ID); err != nil {
			return err
		}
		if err := q.DeleteUser(r.Context(), u.ID); err != nil {
			return storeErr(err, fmt.Sprintf("user %q", u.Username))
		}
		return s.audit(r, q, "user.delete", u.ID, "user "+u.Username)
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type passwordInput struct {
	Password string `json:"password"`
}

// setPassword lets a user change their own password and a user manager
// change anyone's.
func (s *Server) setPassword(w http.ResponseWriter, r *http.Request) error {
	me := userOf(r)
	u, err := s.userByRef(r.Context(), r.PathValue("ref"))
	if err != nil && me.Role.Can(lobby.PermManageUsers) {
		return err
	}
	if err != nil || (u.ID != me.ID && !me.Role.Can(lobby.PermManageUsers)) {
		return lobby.Errorf(lobby.KindForbidden, "you may only change your own password")
	}
	var in passwordInput
	if err := httpjson.Decode(w, r, &in); err != nil {
		return err
	}
	if err := lobby.ValidPassword(in.Password); err != nil {
		return err
	}
	hash, err := s.Auth.Hasher.Hash(r.Context(), in.Password)
	if err != nil {
		return err
	}
	err = s.Store.InTx(r.Context(), func(q store.Queries) error {
		if err := q.SetPassword(r.Context(), u.ID, hash); err != nil {
			return storeErr(err, fmt.Sprintf("user %q", u.Username))
		}
		return s.audit(r, q, "user.password", u.ID, "password of "+u.Username+" changed")
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
