package client

import (
	"context"
	"net/http"

	"lobby/internal/lobby"
)

// ListPools returns one page of pools with their desktop counts.
func (c *Client) ListPools(ctx context.Context, o ListOptions) (*Page[PoolWithCounts], error) {
	return list[PoolWithCounts](ctx, c, "/api/v1/pools", o.values())
}

// GetPool returns a pool by ID or name (KindNotFound when there is none).
func (c *Client) GetPool(ctx context.Context, idOrName string) (*PoolWithCounts, error) {
	var p PoolWithCounts
	if err := c.get(ctx, "pools", "pool", idOrName, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// CreatePool creates a pool (KindInvalid for a bad spec, KindConflict when
// the name is taken).
func (c *Client) CreatePool(ctx context.Context, spec PoolSpec) (*lobby.Pool, error) {
	var p lobby.Pool
	if err := c.call(ctx, http.MethodPost, "/api/v1/pools", nil, spec, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// UpdatePool changes the pool's fields that up gives and returns the pool
// with its desktop counts.
func (c *Client) UpdatePool(ctx context.Context, idOrName string, up PoolUpdate) (*PoolWithCounts, error) {
	var p PoolWithCounts
	if err := c.put(ctx, "pools", "pool", idOrName, up, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// DeletePool deletes a pool.
func (c *Client) DeletePool(ctx context.Context, idOrName string) error {
	return c.del(ctx, "pools", "pool", idOrName)
}
