package client

import (
	"context"
	"net/http"

	"lobby/internal/lobby"
)

// ListUsers returns one page of users.
func (c *Client) ListUsers(ctx context.Context, o ListOptions) (*Page[lobby.User], error) {
	return list[lobby.User](ctx, c, "/api/v1/users", o.values())
}

// GetUser returns a user by ID or username.
func (c *Client) GetUser(ctx context.Context, idOrName string) (*lobby.User, error) {
	var u lobby.User
	if err := c.get(ctx, "users", "user", idOrName, &u); err != nil {
		return nil, err
	}
	return &u, nil
}

// CreateUser creates a local user.
func (c *Client) CreateUser(ctx context.Context, spec UserSpec) (*lobby.User, error) {
	var u lobby.User
	if err := c.call(ctx, http.MethodPost, "/api/v1/users", nil, spec, &u); err != nil {
		return nil, err
	}
	return &u, nil
}

// UpdateUser changes a user's role, groups or disabled flag.
func (c *Client) UpdateUser(ctx context.Context, idOrName string, up UserUpdate) (*lobby.User, error) {
	var u lobby.User
	if err := c.put(ctx, "users", "user", idOrName, up, &u); err != nil {
		return nil, err
	}
	return &u, nil
}

// DeleteUser deletes a user.
func (c *Client) DeleteUser(ctx context.Context, idOrName string) error {
	return c.del(ctx, "users", "user", idOrName)
}

// SetPassword sets a user's password.
func (c *Client) SetPassword(ctx context.Context, id, password string) error {
	p, err := item("users", "user", id)
	if err != nil {
		return err
	}
	in := map[string]string{"password": password}
	return c.call(ctx, http.MethodPost, p+"/password", nil, in, nil)
}
