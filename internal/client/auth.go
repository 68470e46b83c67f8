package client

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"lobby/internal/lobby"
)

// Login signs in with a username and password and returns a token; the
// client itself is not changed (make a new one WithToken). A wrong password
// is a *lobby.Error of KindUnauthorized.
func (c *Client) Login(ctx context.Context, username, password string) (*LoginResult, error) {
	var r LoginResult
	in := map[string]string{"username": username, "password": password}
	if err := c.call(ctx, http.MethodPost, "/api/v1/login", nil, in, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// Logout revokes the client's token.
func (c *Client) Logout(ctx context.Context) error {
	return c.call(ctx, http.MethodPost, "/api/v1/logout", nil, nil, nil)
}

// Me returns the signed-in user.
func (c *Client) Me(ctx context.Context) (*lobby.User, error) {
	var u lobby.User
	if err := c.call(ctx, http.MethodGet, "/api/v1/me", nil, nil, &u); err != nil {
		return nil, err
	}
	return &u, nil
}

// Version returns the server's version (GET /version, plain text).
func (c *Client) Version(ctx context.Context) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/version", nil)
	if err != nil {
		return "", err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return "", c.transportError(ctx, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return "", c.apiError(resp)
	}
	b, err := readLimited(resp.Body, 4<<10)
	if err != nil {
		return "", c.notLobby(resp, nil)
	}
	return strings.TrimSpace(string(b)), nil
}

// item returns the path of one named item of a collection, or a
// KindInvalid error when the name is empty (which would name the list).
func item(collection, what, id string) (string, error) {
	if strings.TrimSpace(id) == "" {
		return "", lobby.Errorf(lobby.KindInvalid, "no %s given", what)
	}
	return "/api/v1/" + collection + "/" + url.PathEscape(id), nil
}

// get fetches one item into out.
func (c *Client) get(ctx context.Context, collection, what, id string, out any) error {
	p, err := item(collection, what, id)
	if err != nil {
		return err
	}
	return c.call(ctx, http.MethodGet, p, nil, nil, out)
}

// put replaces one item and decodes the answer into out.
func (c *Client) put(ctx context.Context, collection, what, id string, in, out any) error {
	p, err := item(collection, what, id)
	if err != nil {
		return err
	}
	return c.call(ctx, http.MethodPut, p, nil, in, out)
}

// del deletes one item.
func (c *Client) del(ctx context.Context, collection, what, id string) error {
	p, err := item(collection, what, id)
	if err != nil {
		return err
	}
	return c.call(ctx, http.MethodDelete, p, nil, nil, nil)
}

// list fetches one page of a collection.
func list[T any](ctx context.Context, c *Client, path string, q url.Values) (*Page[T], error) {
	var p Page[T]
	if err := c.call(ctx, http.MethodGet, path, q, nil, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// All collects every item of a paged list by following Next cursors from
// the first page. It stops with an error if the server repeats a cursor.
func All[T any](ctx context.Context, page func(ctx context.Context, o ListOptions) (*Page[T], error)) ([]T, error) {
	var all []T
	seen := map[string]bool{}
	var o ListOptions
	for {
		p, err := page(ctx, o)
		if err != nil {
			return nil, err
		}
		all = append(all, p.Items...)
		if p.Next == "" {
			return all, nil
		}
		if seen[p.Next] {
			return nil, lobby.Errorf(lobby.KindInternal, "the server repeated the page cursor %q", p.Next)
		}
		seen[p.Next] = true
		o.After = p.Next
	}
}
