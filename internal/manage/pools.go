package manage

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"lobby/internal/lobby"
	"lobby/internal/store"
)

// PoolInput is what a client may set on a pool.
type PoolInput struct {
	Name        string `json:"name"`
	MinSize     int    `json:"min_size"`
	MaxSize     int    `json:"max_size"`
	MinFree     int    `json:"min_free"`
	NamePattern string `json:"name_pattern"`
	Template    string `json:"template"`
}

// PoolInputOf is the input that would recreate p (the start of an edit).
func PoolInputOf(p *lobby.Pool) PoolInput {
	return PoolInput{Name: p.Name, MinSize: p.MinSize, MaxSize: p.MaxSize, MinFree: p.MinFree, NamePattern: p.NamePattern, Template: p.Template}
}

// Pool looks a pool up by name, then by ID.
func (s *Service) Pool(ctx context.Context, ref string) (*lobby.Pool, error) {
	p, err := s.Store.GetPoolByName(ctx, ref)
	if errors.Is(err, store.ErrNotFound) {
		p, err = s.Store.GetPool(ctx, ref)
	}
	return p, StoreErr(err, fmt.Sprintf("pool %q", ref))
}

func poolDetail(p *lobby.Pool) string {
	return fmt.Sprintf("pool %s: size %d-%d, %d free", p.Name, p.MinSize, p.MaxSize, p.MinFree)
}

// CreatePool validates and creates a pool; the pool manager then stocks it.
func (s *Service) CreatePool(ctx context.Context, a Actor, in PoolInput) (*lobby.Pool, error) {
	if err := Allow(a, lobby.PermConfigure); err != nil {
		return nil, err
	}
	p := &lobby.Pool{Name: in.Name, MinSize: in.MinSize, MaxSize: in.MaxSize, MinFree: in.MinFree, NamePattern: in.NamePattern, Template: in.Template, Created: s.now()}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	err := s.Store.InTx(ctx, func(q store.Queries) error {
		if err := q.CreatePool(ctx, p); err != nil {
			return nameTaken(err, fmt.Sprintf("pool %q", p.Name))
		}
		return s.audit(ctx, q, a, "pool.create", p.ID, poolDetail(p))
	})
	if err != nil {
		return nil, err
	}
	s.kick(p.ID)
	return p, nil
}

// UpdatePool applies edit to the pool's current input and saves the result;
// fields edit leaves alone keep their value.
func (s *Service) UpdatePool(ctx context.Context, a Actor, ref string, edit func(*PoolInput) error) (*lobby.Pool, error) {
	if err := Allow(a, lobby.PermConfigure); err != nil {
		return nil, err
	}
	p, err := s.Pool(ctx, ref)
	if err != nil {
		return nil, err
	}
	in := PoolInputOf(p)
	if err := edit(&in); err != nil {
		return nil, err
	}
	p.Name, p.MinSize, p.MaxSize, p.MinFree, p.NamePattern, p.Template = in.Name, in.MinSize, in.MaxSize, in.MinFree, in.NamePattern, in.Template
	if err := p.Validate(); err != nil {
		return nil, err
	}
	err = s.Store.InTx(ctx, func(q store.Queries) error {
		if err := q.UpdatePool(ctx, p); err != nil {
			return nameTaken(err, fmt.Sprintf("pool %q", p.Name))
		}
		return s.audit(ctx, q, a, "pool.update", p.ID, poolDetail(p))
	})
	if err != nil {
		return nil, err
	}
	s.kick(p.ID)
	return p, nil
}

// DeletePool deletes an empty pool; KindConflict, saying how to empty it,
// while desktops remain.
func (s *Service) DeletePool(ctx context.Context, a Actor, ref string) error {
	if err := Allow(a, lobby.PermConfigure); err != nil {
		return err
	}
	p, err := s.Pool(ctx, ref)
	if err != nil {
		return err
	}
	inUse := false
	err = s.Store.InTx(ctx, func(q store.Queries) error {
		if err := q.DeletePool(ctx, p.ID); errors.Is(err, store.ErrConflict) {
			inUse = true
			return err
		} else if err != nil {
			return StoreErr(err, fmt.Sprintf("pool %q", p.Name))
		}
		if err := s.audit(ctx, q, a, "pool.delete", p.ID, "pool "+p.Name); err != nil {
			return err
		}
		return s.dropPoolFromPolicies(ctx, q, a, p)
	})
	if inUse {
		// Counted after the transaction: PostgreSQL's ends with the
		// refused statement.
		c, _ := s.Store.PoolCounts(ctx, p.ID)
		return poolNotEmpty(p, c.Total)
	}
	return err
}

// dropPoolFromPolicies takes a deleted pool out of the policies that
// offered it, in the deletion's transaction, so that no policy names a
// pool that no longer exists.
func (s *Service) dropPoolFromPolicies(ctx context.Context, q store.Queries, a Actor, p *lobby.Pool) error {
	pols, err := store.All(func(o store.ListOptions) ([]lobby.Policy, error) { return q.ListPolicies(ctx, o) },
		func(pol lobby.Policy) string { return pol.ID })
	if err != nil {
		return err
	}
	for _, pol := range pols {
		i := slices.Index(pol.Pools, p.ID)
		if i < 0 {
			continue
		}
		pol.Pools = slices.Delete(pol.Pools, i, i+1)
		if err := q.UpdatePolicy(ctx, &pol); err != nil {
			return err
		}
		if err := s.audit(ctx, q, a, "policy.update", pol.ID, fmt.Sprintf("policy %s no longer offers pool %s (deleted)", pol.Name, p.Name)); err != nil {
			return err
		}
	}
	return nil
}

// poolNotEmpty refuses to delete pool p, which holds n desktops (0 when
// not known), and says how to empty it from the CLI and the API: the pool
// manager re-provisions deleted desktops up to the pool's minimums, so
// those go to 0 first.
func poolNotEmpty(p *lobby.Pool, n int) error {
	has := "desktops"
	switch {
	case n == 1:
		has = "1 desktop"
	case n > 1:
		has = fmt.Sprintf("%d desktops", n)
	}
	steps := ""
	if p.MinSize > 0 || p.MinFree > 0 {
		steps = fmt.Sprintf("set its minimum size and free desktops to 0 (lobby pools set %s --min 0 --min-free 0, or PUT /api/v1/pools/%s with min_size and min_free 0) and ", p.Name, p.Name)
	}
	return lobby.Errorf(lobby.KindConflict, "pool %s still has %s: %sdelete its desktops (lobby desktops rm NAME, or POST /api/v1/desktops/ID/actions with action delete), then remove the pool", p.Name, has, steps)
}
