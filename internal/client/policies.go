package client

import (
	"context"
	"net/http"

	"lobby/internal/lobby"
)

// ListPolicies returns one page of policies.
func (c *Client) ListPolicies(ctx context.Context, o ListOptions) (*Page[lobby.Policy], error) {
	return list[lobby.Policy](ctx, c, "/api/v1/policies", o.values())
}

// GetPolicy returns a policy by ID or name.
func (c *Client) GetPolicy(ctx context.Context, idOrName string) (*lobby.Policy, error) {
	var p lobby.Policy
	if err := c.get(ctx, "policies", "policy", idOrName, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// CreatePolicy creates a policy.
func (c *Client) CreatePolicy(ctx context.Context, spec PolicySpec) (*lobby.Policy, error) {
	var p lobby.Policy
	if err := c.call(ctx, http.MethodPost, "/api/v1/policies", nil, spec, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// UpdatePolicy changes the policy's fields that up gives.
func (c *Client) UpdatePolicy(ctx context.Context, idOrName string, up PolicyUpdate) (*lobby.Policy, error) {
	var p lobby.Policy
	if err := c.put(ctx, "policies", "policy", idOrName, up, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// DeletePolicy deletes a policy.
func (c *Client) DeletePolicy(ctx context.Context, idOrName string) error {
	return c.del(ctx, "policies", "policy", idOrName)
}
