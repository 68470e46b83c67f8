package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"lobby/internal/httpjson"
	"lobby/internal/lobby"
	"lobby/internal/store"
)

// poolInput is what a client may set on a pool.
type poolInput struct {
	Name        string `json:"name"`
	MinSize     int    `json:"min_size"`
	MaxSize     int    `json:"max_size"`
	MinFree     int    `json:"min_free"`
	NamePattern string `json:"name_pattern"`
	Template    string `json:"template"`
}

type poolView struct {
	lobby.Pool
	Counts store.PoolCounts `json:"counts"`
}

func (s *Server) poolByRef(ctx context.Context, ref string) (*lobby.Pool, error) {
	p, err := s.Store.GetPoolByName(ctx, ref)
	if errors.Is(err, store.ErrNotFound) {
		p, err = s.Store.GetPool(ctx, ref)
	}
	return p, storeErr(err, fmt.Sprintf("pool %q", ref))
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
	p, err := s.poolByRef(r.Context(), r.PathValue("ref"))
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
	var in poolInput
	if err := httpjson.Decode(w, r, &in); err != nil {
		return err
	}
	p := &lobby.Pool{Name: in.Name, MinSize: in.MinSize, MaxSize: in.MaxSize, MinFree: in.MinFree, NamePattern: in.NamePattern, Template: in.Template, Created: s.Auth.Now()}
	if err := p.Validate(); err != nil {
		return err
	}
	err := s.Store.InTx(r.Context(), func(q store.Queries) error {
		if err := q.CreatePool(r.Context(), p); err != nil {
			return storeErr(err, fmt.Sprintf("pool %q", p.Name))
		}
		return s.audit(r, q, "pool.create", p.ID, fmt.Sprintf("pool %s: size %d-%d, %d free", p.Name, p.MinSize, p.MaxSize, p.MinFree))
	})
	if err != nil {
		return err
	}
	if s.Assign.Kick != nil {
		s.Assign.Kick(p.ID)
	}
	httpjson.Write(w, http.StatusCreated, poolView{Pool: *p})
	return nil
}

func (s *Server) updatePool(w http.ResponseWriter, r *http.Request) error {
	p, err := s.poolByRef(r.Context(), r.PathValue("ref"))
	if err != nil {
		return err
	}
	// Fields left out of the body keep their value.
	in := poolInput{Name: p.Name, MinSize: p.MinSize, MaxSize: p.MaxSize, MinFree: p.MinFree, NamePattern: p.NamePattern, Template: p.Template}
	if err := httpjson.Decode(w, r, &in); err != nil {
		return err
	}
	p.Name, p.MinSize, p.MaxSize, p.MinFree, p.NamePattern, p.Template = in.Name, in.MinSize, in.MaxSize, in.MinFree, in.NamePattern, in.Template
	if err := p.Validate(); err != nil {
		return err
	}
	err = s.Store.InTx(r.Context(), func(q store.Queries) error {
		if err := q.UpdatePool(r.Context(), p); err != nil {
			return storeErr(err, fmt.Sprintf("pool %q", p.Name))
		}
		return s.audit(r, q, "pool.update", p.ID, fmt.Sprintf("pool %s: size %d-%d, %d free", p.Name, p.MinSize, p.MaxSize, p.MinFree))
	})
	if err != nil {
		return err
	}
	if s.Assign.Kick != nil {
		s.Assign.Kick(p.ID)
	}
	v, err := s.viewPool(r.Context(), p)
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, v)
	return nil
}

func (s *Server) deletePool(w http.ResponseWriter, r *http.Request) error {
	p, err := s.poolByRef(r.Context(), r.PathValue("ref"))
	if err != nil {
		return err
	}
	err = s.Store.InTx(r.Context(), func(q store.Queries) error {
		if err := q.DeletePool(r.Context(), p.ID); errors.Is(err, store.ErrConflict) {
			return lobby.Errorf(lobby.KindConflict, "pool %s still has desktops: delete them first (POST /api/v1/desktops/{id}/actions with action delete), then the pool", p.Name)
		} else if err != nil {
			return storeErr(err, fmt.Sprintf("pool %q", p.Name))
		}
		return s.audit(r, q, "pool.delete", p.ID, "pool "+p.Name)
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// policyInput is what a client may set on a policy; pools are names or IDs.
type policyInput struct {
	Name        string            `json:"name"`
	Pools       []string          `json:"pools"`
	Users       []string          `json:"users"`
	Groups      []string          `json:"groups"`
	MaxDesktops int               `json:"max_desktops"`
	Mode        lobby.AssignMode  `json:"mode"`
	Release     lobby.ReleasePlan `json:"release"`
	PowerPlan   lobby.PowerAction `json:"power_on_release"`
	Priority    int               `json:"priority"`
}

func (s *Server) policyByRef(ctx context.Context, ref string) (*lobby.Policy, error) {
	p, err := s.Store.GetPolicyByName(ctx, ref)
	if errors.Is(err, store.ErrNotFound) {
		p, err = s.Store.GetPolicy(ctx, ref)
	}
	return p, storeErr(err, fmt.Sprintf("policy %q", ref))
}

// applyPolicy validates in and copies it onto p, resolving pool names.
func (s *Server) applyPolicy(ctx context.Context, in *policyInput, p *lobby.Policy) error {
	p.Name, p.Users, p.Groups, p.MaxDesktops = in.Name, nonNil(in.Users), nonNil(in.Groups), in.MaxDesktops
	p.Mode, p.Release, p.PowerPlan, p.Priority = in.Mode, in.Release, in.PowerPlan, in.Priority
	p.Pools = make([]string, 0, len(in.Pools))
	for _, ref := range in.Pools {
		pool, err := s.poolByRef(ctx, ref)
		if lobby.ErrorKind(err) == lobby.KindNotFound {
			return lobby.Errorf(lobby.KindInvalid, "policy names pool %q, which does not exist: create the pool first", ref)
		}
		if err != nil {
			return err
		}
		p.Pools = append(p.Pools, pool.ID)
	}
	return p.Validate()
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
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
	p, err := s.policyByRef(r.Context(), r.PathValue("ref"))
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, p)
	return nil
}

func (s *Server) createPolicy(w http.ResponseWriter, r *http.Request) error {
	var in policyInput
	if err := httpjson.Decode(w, r, &in); err != nil {
		return err
	}
	p := &lobby.Policy{Created: s.Auth.Now()}
	if err := s.applyPolicy(r.Context(), &in, p); err != nil {
		return err
	}
	err := s.Store.InTx(r.Context(), func(q store.Queries) error {
		if err := q.CreatePolicy(r.Context(), p); err != nil {
			return storeErr(err, fmt.Sprintf("policy %q", p.Name))
		}
		return s.audit(r, q, "policy.create", p.ID, "policy "+p.Name)
	})
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusCreated, p)
	return nil
}

func (s *Server) updatePolicy(w http.ResponseWriter, r *http.Request) error {
	p, err := s.policyByRef(r.Context(), r.PathValue("ref"))
	if err != nil {
		return err
	}
	in := policyInput{Name: p.Name, Pools: p.Pools, Users: p.Users, Groups: p.Groups, MaxDesktops: p.MaxDesktops, Mode: p.Mode, Release: p.Release, PowerPlan: p.PowerPlan, Priority: p.Priority}
	if err := httpjson.Decode(w, r, &in); err != nil {
		return err
	}
	if err := s.applyPolicy(r.Context(), &in, p); err != nil {
		return err
	}
	err = s.Store.InTx(r.Context(), func(q store.Queries) error {
		if err := q.UpdatePolicy(r.Context(), p); err != nil {
			return storeErr(err, fmt.Sprintf("policy %q", p.Name))
		}
		return s.audit(r, q, "policy.update", p.ID, "policy "+p.Name)
	})
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, p)
	return nil
}

func (s *Server) deletePolicy(w http.ResponseWriter, r *http.Request) error {
	p, err := s.policyByRef(r.Context(), r.PathValue("ref"))
	if err != nil {
		return err
	}
	err = s.Store.InTx(r.Context(), func(q store.Queries) error {
		if err := q.DeletePolicy(r.Context(), p.ID); err != nil {
			return storeErr(err, fmt.Sprintf("policy %q", p.Name))
		}
		return s.audit(r, q, "policy.delete", p.ID, "policy "+p.Name)
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
