package bench

import (
	"context"
	"fmt"
	"time"

	"lobby/internal/auth"
	"lobby/internal/lobby"
	"lobby/internal/store"
)

// PoolCounts is the counts field of GET /api/v1/pools/{ref}.
type PoolCounts struct {
	Total, Free, Assigned, Pending int
}

// MakePool creates a pool of exactly n desktops through the API
// (min_size = min_free = max_size = n) and a policy that offers one of them
// to everyone: non-persistent, released on logoff, kept running. It
// returns once all n are free and running, or after timeout.
func (n *Node) MakePool(ctx context.Context, name string, size int, timeout time.Duration) error {
	pool := map[string]any{"name": name, "min_size": size, "max_size": size, "min_free": size, "name_pattern": name + "-{n}"}
	if err := n.Admin.Call(ctx, "POST", "/api/v1/pools", pool, nil); err != nil {
		return fmt.Errorf("create pool %s: %w", name, err)
	}
	pol := map[string]any{
		"name": name, "pools": []string{name}, "users": []string{"*"}, "max_desktops": 1,
		"mode": "non-persistent", "release": map[string]any{"on_logoff": true}, "power_on_release": "keep",
	}
	if err := n.Admin.Call(ctx, "POST", "/api/v1/policies", pol, nil); err != nil {
		return fmt.Errorf("create policy %s: %w", name, err)
	}
	deadline := time.Now().Add(timeout)
	for {
		var p struct{ Counts PoolCounts }
		if err := n.Admin.Call(ctx, "GET", "/api/v1/pools/"+name, nil, &p); err != nil {
			return err
		}
		if p.Counts.Free == size {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pool %s: %d of %d desktops free after %s", name, p.Counts.Free, size, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// CreateUsers creates users prefix00000... with one password, through the
// store directly: the password is hashed once (same argon2id parameters
// as the node) and the encoded hash reused, to save setup time. Signing
// in still verifies the full hash each time.
func (n *Node) CreateUsers(ctx context.Context, prefix string, count int, password string) ([]string, error) {
	hash, err := auth.NewHasher(n.Server.Auth.Hasher.Params, 1).Hash(ctx, password)
	if err != nil {
		return nil, err
	}
	names := make([]string, count)
	now := time.Now()
	const batch = 500
	for lo := 0; lo < count; lo += batch {
		err := n.Server.Store.InTx(ctx, func(q store.Queries) error {
			for i := lo; i < min(lo+batch, count); i++ {
				names[i] = fmt.Sprintf("%s%05d", prefix, i)
				u := &lobby.User{Username: names[i], Role: lobby.RoleUser, Groups: []string{}, Created: now}
				if err := q.CreateUser(ctx, u, hash); err != nil {
					return fmt.Errorf("create user %s: %w", names[i], err)
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return names, nil
}
