package api

import (
	"context"
	"net/http"

	"lobby/internal/httpjson"
	"lobby/internal/lobby"
	"lobby/internal/manage"
	"lobby/internal/store"
)

// manager is the administrative service the API shares with the web
// console, so both validate, authorize and audit alike.
func (s *Server) manager() *manage.Service { return s.Manage }

// actor is who calls, for manage's role check and audit.
func actor(r *http.Request) manage.Actor { return manage.Actor{User: userOf(r), Remote: remote(r)} }

type poolView struct {
	lobby.Pool
	Counts store.PoolCounts `json:"counts"`
}

func (s *Server) viewPool(ctx context.Context, p *lobby.Pool) (poolView, error) {
	c, err := s.Store.PoolCounts(ctx, p.ID)
	return poolView{Pool: *p, Counts: c}, err
}

func (s *Server) listPools(w http.ResponseWriter, r *http.Request) error {
	opt, err := page(r)
	if err != nil {
		return err
	}
	pools, err := s.Store.ListPools(r.Context(), opt)
	if err != nil {
		return err
	}
	views := make([]poolView, 0, len(pools))
	for i := range pools {
		v, err := s.viewPool(r.Context(), &pools[i])
		if err != nil {
			return err
		}
		views = append(views, v)
	}
	httpjson.Write(w, http.StatusOK, paged(views, opt, func(v poolView) string { return v.ID }))
	return nil
}

func (s *Server) getPool(w http.ResponseWriter, r *http.Request) error {
	p, err := s.manager().Pool(r.Context(), r.PathValue("ref"))
	if err != nil {
		return err
	}
	v, err := s.viewPool(r.Context(), p)
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, v)
	return nil
}

func (s *Server) createPool(w http.ResponseWriter, r *http.Request) error {
	var in manage.PoolInput
	if err := httpjson.Decode(w, r, &in); err != nil {
		return err
	}
	p, err := s.manager().CreatePool(r.Context(), actor(r), in)
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusCreated, poolView{Pool: *p})
	return nil
}

func (s *Server) updatePool(w http.ResponseWriter, r *http.Request) error {
	// Fields left out of the body keep their value.
	p, err := s.manager().UpdatePool(r.Context(), actor(r), r.PathValue("ref"), func(in *manage.PoolInput) error {
		return httpjson.Decode(w, r, in)
	})
	if err != nil {
		return err
	}
	v, err := s.viewPool(r.Context(), p)
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, v)
	return nil
}

func (s *Server) deletePool(w http.ResponseWriter, r *http.Request) error {
	if err := s.manager().DeletePool(r.Context(), actor(r), r.PathValue("ref")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) listPolicies(w http.ResponseWriter, r *http.Request) error {
	opt, err := page(r)
	if err != nil {
		return err
	}
	ps, err := s.Store.ListPolicies(r.Context(), opt)
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, paged(ps, opt, func(p lobby.Policy) string { return p.ID }))
	return nil
}

func (s *Server) getPolicy(w http.ResponseWriter, r *http.Request) error {
	p, err := s.manager().Policy(r.Context(), r.PathValue("ref"))
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, p)
	return nil
}

func (s *Server) createPolicy(w http.ResponseWriter, r *http.Request) error {
	var in manage.PolicyInput
	if err := httpjson.Decode(w, r, &in); err != nil {
		return err
	}
	p, err := s.manager().CreatePolicy(r.Context(), actor(r), in)
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusCreated, p)
	return nil
}

func (s *Server) updatePolicy(w http.ResponseWriter, r *http.Request) error {
	p, err := s.manager().UpdatePolicy(r.Context(), actor(r), r.PathValue("ref"), func(in *manage.PolicyInput) error {
		return httpjson.Decode(w, r, in)
	})
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, p)
	return nil
}

func (s *Server) deletePolicy(w http.ResponseWriter, r *http.Request) error {
	if err := s.manager().DeletePolicy(r.Context(), actor(r), r.PathValue("ref")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
