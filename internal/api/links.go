package api

import (
	"net/http"

	"lobby/internal/httpjson"
	"lobby/internal/link"
	"lobby/internal/lobby"
	"lobby/internal/manage"
	"lobby/internal/store"
)

// tokenInput is the body of POST /tokens; every field is optional.
type tokenInput struct {
	ExpiresIn *string `json:"expires_in"` // a Go duration, or days ("7d")
	Uses      *int    `json:"uses"`
	Note      string  `json:"note"`
}

// newToken answers a create: the token string, shown only now, and the
// stored token.
type newToken struct {
	Token string `json:"token"`
	store.JoinToken
}

// tokenView is a listed token with its state (active, expired, used up,
// revoked). store.JoinToken never serializes its hash.
type tokenView struct {
	store.JoinToken
	State string `json:"state"`
}

// spec reads the body into a manage.JoinTokenSpec, refusing explicit
// values that would otherwise read as "the default".
func (in tokenInput) spec() (manage.JoinTokenSpec, error) {
	spec := manage.JoinTokenSpec{Note: in.Note}
	if in.ExpiresIn != nil {
		if *in.ExpiresIn == "" {
			return spec, lobby.FieldErrorf("expires_in", "expires_in is empty: write e.g. 30m, 24h or 7d, or leave it out for 24h")
		}
		ttl, err := manage.ParseTokenTTL(*in.ExpiresIn)
		if err != nil {
			return spec, err
		}
		spec.TTL = ttl
	}
	if in.Uses != nil {
		if err := manage.ValidTokenUses(*in.Uses); err != nil {
			return spec, err
		}
		spec.Uses = *in.Uses
	}
	return spec, nil
}

// createToken issues a join token. The body may be left out entirely.
func (s *Server) createToken(w http.ResponseWriter, r *http.Request) error {
	var in tokenInput
	if r.ContentLength != 0 {
		if err := httpjson.Decode(w, r, &in); err != nil {
			return err
		}
	}
	spec, err := in.spec()
	if err != nil {
		return err
	}
	tok, t, err := s.manager().CreateJoinToken(r.Context(), actor(r), spec)
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusCreated, newToken{Token: tok, JoinToken: *t})
	return nil
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request) error {
	opt, err := page(r)
	if err != nil {
		return err
	}
	ts, err := s.manager().ListJoinTokens(r.Context(), actor(r), opt)
	if err != nil {
		return err
	}
	now := s.Auth.Now()
	views := make([]tokenView, 0, len(ts))
	for i := range ts {
		views = append(views, tokenView{JoinToken: ts[i], State: manage.TokenState(&ts[i], now)})
	}
	httpjson.Write(w, http.StatusOK, paged(views, opt, func(v tokenView) string { return v.ID }))
	return nil
}

func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request) error {
	if err := s.manager().RevokeJoinToken(r.Context(), actor(r), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// listLinks answers this node's links and latest refusals, in one page.
func (s *Server) listLinks(w http.ResponseWriter, r *http.Request) error {
	ls, err := s.manager().Links(r.Context(), actor(r))
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, list[link.Status]{Items: ls})
	return nil
}

// hostAction revokes a host's certificate, which cuts its link.
func (s *Server) hostAction(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Action string `json:"action"`
	}
	if err := httpjson.Decode(w, r, &in); err != nil {
		return err
	}
	if in.Action != "revoke" {
		return lobby.FieldErrorf("action", "action %q is not valid: use revoke (to remove a host, DELETE it)", in.Action)
	}
	h, err := s.manager().RevokeHost(r.Context(), actor(r), r.PathValue("ref"))
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, h)
	return nil
}

func (s *Server) removeHost(w http.ResponseWriter, r *http.Request) error {
	if err := s.manager().RemoveHost(r.Context(), actor(r), r.PathValue("ref")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
