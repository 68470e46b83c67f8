package manage

import (
	"context"
	"errors"
	"fmt"

	"lobby/internal/assign"
	"lobby/internal/lobby"
	"lobby/internal/store"
)

// PolicyInput is what a client may set on a policy; pools are names or IDs.
type PolicyInput struct {
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

// PolicyInputOf is the input that would recreate p.
func PolicyInputOf(p *lobby.Policy) PolicyInput {
	return PolicyInput{Name: p.Name, Pools: p.Pools, Users: p.Users, Groups: p.Groups, MaxDesktops: p.MaxDesktops, Mode: p.Mode, Release: p.Release, PowerPlan: p.PowerPlan, Priority: p.Priority}
}

// Policy looks a policy up by name, then by ID.
func (s *Service) Policy(ctx context.Context, ref string) (*lobby.Policy, error) {
	p, err := s.Store.GetPolicyByName(ctx, ref)
	if errors.Is(err, store.ErrNotFound) {
		p, err = s.Store.GetPolicy(ctx, ref)
	}
	return p, StoreErr(err, fmt.Sprintf("policy %q", ref))
}

// applyPolicy validates in and copies it onto p, resolving pool names.
func (s *Service) applyPolicy(ctx context.Context, in *PolicyInput, p *lobby.Policy) error {
	p.Name, p.Users, p.Groups, p.MaxDesktops = in.Name, nonNil(in.Users), nonNil(in.Groups), in.MaxDesktops
	p.Mode, p.Release, p.PowerPlan, p.Priority = in.Mode, in.Release, in.PowerPlan, in.Priority
	p.Pools = make([]string, 0, len(in.Pools))
	for _, ref := range in.Pools {
		pool, err := s.Pool(ctx, ref)
		if lobby.ErrorKind(err) == lobby.KindNotFound {
			return lobby.FieldErrorf("pools", "policy names pool %q, which does not exist: create the pool first", ref)
		}
		if err != nil {
			return err
		}
		p.Pools = append(p.Pools, pool.ID)
	}
	return p.Validate()
}

// CreatePolicy validates and creates a policy.
func (s *Service) CreatePolicy(ctx context.Context, a Actor, in PolicyInput) (*lobby.Policy, error) {
	if err := Allow(a, lobby.PermConfigure); err != nil {
		return nil, err
	}
	p := &lobby.Policy{Created: s.now()}
	if err := s.applyPolicy(ctx, &in, p); err != nil {
		return nil, err
	}
	err := s.Store.InTx(ctx, func(q store.Queries) error {
		if err := q.CreatePolicy(ctx, p); err != nil {
			return nameTaken(err, fmt.Sprintf("policy %q", p.Name))
		}
		return s.audit(ctx, q, a, "policy.create", p.ID, "policy "+p.Name)
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// UpdatePolicy applies edit to the policy's current input and saves it.
func (s *Service) UpdatePolicy(ctx context.Context, a Actor, ref string, edit func(*PolicyInput) error) (*lobby.Policy, error) {
	if err := Allow(a, lobby.PermConfigure); err != nil {
		return nil, err
	}
	p, err := s.Policy(ctx, ref)
	if err != nil {
		return nil, err
	}
	in := PolicyInputOf(p)
	if err := edit(&in); err != nil {
		return nil, err
	}
	if err := s.applyPolicy(ctx, &in, p); err != nil {
		return nil, err
	}
	err = s.Store.InTx(ctx, func(q store.Queries) error {
		if err := q.UpdatePolicy(ctx, p); err != nil {
			return nameTaken(err, fmt.Sprintf("policy %q", p.Name))
		}
		return s.audit(ctx, q, a, "policy.update", p.ID, "policy "+p.Name)
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// DeletePolicy deletes a policy. Desktops it gave stay assigned until
// their release plan (now the default one) ends them.
func (s *Service) DeletePolicy(ctx context.Context, a Actor, ref string) error {
	if err := Allow(a, lobby.PermConfigure); err != nil {
		return err
	}
	p, err := s.Policy(ctx, ref)
	if err != nil {
		return err
	}
	return s.Store.InTx(ctx, func(q store.Queries) error {
		if err := q.DeletePolicy(ctx, p.ID); err != nil {
			return StoreErr(err, fmt.Sprintf("policy %q", p.Name))
		}
		return s.audit(ctx, q, a, "policy.delete", p.ID, "policy "+p.Name)
	})
}

// Offer is one pool a user would get, and why.
type Offer struct {
	Pool   *lobby.Pool
	Policy *lobby.Policy
	Counts store.PoolCounts
	// Why says which rule of Policy matched the user.
	Why string
	// Shadowed lists the other policies that also cover this pool for the
	// user but lose to Policy on priority.
	Shadowed []string
}

// Simulate answers "what would this user get?": for every pool, the policy
// that gives it to the user, chosen by assign.Winner over
// assign.Service.PoliciesFor, the code a real connect runs, so the answer
// cannot drift from what users get.
func (s *Service) Simulate(ctx context.Context, a Actor, u *lobby.User) ([]Offer, error) {
	if err := Allow(a, lobby.PermRead); err != nil {
		return nil, err
	}
	return s.Offers(ctx, u)
}

// Offers lists the pools u may connect to, each with the policy that wins
// and the pool's counts (the portal's "my desktops").
func (s *Service) Offers(ctx context.Context, u *lobby.User) ([]Offer, error) {
	pols, err := s.Assign.PoliciesFor(ctx, u)
	if err != nil {
		return nil, err
	}
	var out []Offer
	seen := map[string]bool{}
	for _, pol := range pols {
		for _, pid := range pol.Pools {
			if seen[pid] {
				continue
			}
			seen[pid] = true
			pool, err := s.Store.GetPool(ctx, pid)
			if errors.Is(err, store.ErrNotFound) {
				continue // a policy may name a pool deleted since
			}
			if err != nil {
				return nil, err
			}
			chosen := assign.Winner(pols, pool.ID)
			c, err := s.Store.PoolCounts(ctx, pool.ID)
			if err != nil {
				return nil, err
			}
			o := Offer{Pool: pool, Policy: chosen, Counts: c, Why: why(chosen, u)}
			for _, other := range pols {
				if other.ID == chosen.ID {
					continue
				}
				for _, op := range other.Pools {
					if op == pool.ID {
						o.Shadowed = append(o.Shadowed, other.Name)
					}
				}
			}
			out = append(out, o)
		}
	}
	return out, nil
}

// why names the rule of p that covers u.
func why(p *lobby.Policy, u *lobby.User) string {
	for _, name := range p.Users {
		if name == "*" {
			return "the policy applies to everyone (*)"
		}
		if name == u.Username {
			return "the policy names " + u.Username
		}
	}
	for _, g := range p.Groups {
		for _, ug := range u.Groups {
			if g == ug {
				return fmt.Sprintf("%s is in group %s", u.Username, g)
			}
		}
	}
	return ""
}
