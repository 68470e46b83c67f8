package api

import (
	"net/http"

	"lobby/internal/httpjson"
	"lobby/internal/lobby"
	"lobby/internal/manage"
)

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
	u, err := s.manager().User(r.Context(), r.PathValue("ref"))
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, u)
	return nil
}

func (s *Server) createUser(w http.ResponseWriter, r *http.Request) error {
	in := manage.UserInput{Role: lobby.RoleUser}
	if err := httpjson.Decode(w, r, &in); err != nil {
		return err
	}
	u, err := s.manager().CreateUser(r.Context(), actor(r), in)
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusCreated, u)
	return nil
}

func (s *Server) updateUser(w http.ResponseWriter, r *http.Request) error {
	u, err := s.manager().UpdateUser(r.Context(), actor(r), r.PathValue("ref"), func(in *manage.UserInput) error {
		return httpjson.Decode(w, r, in)
	})
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, u)
	return nil
}

func (s *Server) deleteUser(w http.ResponseWriter, r *http.Request) error {
	if err := s.manager().DeleteUser(r.Context(), actor(r), r.PathValue("ref")); err != nil {
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
	var in passwordInput
	if err := httpjson.Decode(w, r, &in); err != nil {
		return err
	}
	if err := s.manager().SetPassword(r.Context(), actor(r), r.PathValue("ref"), in.Password); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
