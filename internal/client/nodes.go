package client

import (
	"context"
	"net/http"

	"lobby/internal/lobby"
)

// Node is a node of the cluster as GET /api/v1/nodes answers it.
type Node struct {
	lobby.Node
	Alive  bool `json:"alive"`
	Leader bool `json:"leader"`
}

// ListNodes lists the cluster's nodes.
func (c *Client) ListNodes(ctx context.Context) ([]Node, error) {
	p, err := list[Node](ctx, c, "/api/v1/nodes", nil)
	if err != nil {
		return nil, err
	}
	return p.Items, nil
}

// NodeAction drains ("drain") or resumes ("resume") a node by site ID.
func (c *Client) NodeAction(ctx context.Context, site, action string) error {
	p, err := item("nodes", "site ID", site)
	if err != nil {
		return err
	}
	return c.call(ctx, http.MethodPost, p+"/actions", nil, map[string]string{"action": action}, nil)
}

// RemoveNode forgets a dead node by site ID.
func (c *Client) RemoveNode(ctx context.Context, site string) error {
	return c.del(ctx, "nodes", "site ID", site)
}
