package client

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"lobby/internal/lobby"
)

// JoinTokenSpec asks for a join token; zero fields take the server's
// defaults (24 hours, one use).
type JoinTokenSpec struct {
	ExpiresIn string `json:"expires_in,omitempty"` // a Go duration ("24h") or days ("7d")
	Uses      int    `json:"uses,omitempty"`
	Note      string `json:"note,omitempty"`
}

// JoinToken is a join token as the API lists it; its secret is never
// listed.
type JoinToken struct {
	ID        string    `json:"id"`
	Note      string    `json:"note,omitempty"`
	CreatedBy string    `json:"created_by"`
	Created   time.Time `json:"created"`
	Expires   time.Time `json:"expires"`
	MaxUses   int       `json:"max_uses"`
	Uses      int       `json:"uses"`
	Revoked   bool      `json:"revoked"`
	State     string    `json:"state,omitempty"` // active, expired, used up, revoked
}

// NewJoinToken is a created join token: Token is the string for `lobby
// agent --join`, shown only at creation.
type NewJoinToken struct {
	Token string `json:"token"`
	JoinToken
}

// Link is one row of a node's link list.
type Link struct {
	Kind       string          `json:"kind"`  // leaf (a host's agent) or node (another node)
	State      string          `json:"state"` // up, refused; a node link also connecting or waiting
	Hub        string          `json:"hub"`
	SiteID     int             `json:"site_id"`
	Peer       string          `json:"peer"` // the host's or the other node's name
	PeerSiteID int             `json:"peer_site_id,omitempty"`
	HostID     string          `json:"host_id,omitempty"`
	Address    string          `json:"address"`
	Since      time.Time       `json:"since"`
	RTTMillis  float64         `json:"rtt_ms"`
	Ping       string          `json:"ping,omitempty"`
	Proto      int             `json:"proto,omitempty"`
	Release    string          `json:"release,omitempty"`
	Upstreams  json.RawMessage `json:"upstreams,omitempty"`
	LastError  string          `json:"last_error,omitempty"`
}

// CreateJoinToken issues a join token (administrators only; KindInvalid
// for a bad spec).
func (c *Client) CreateJoinToken(ctx context.Context, spec JoinTokenSpec) (*NewJoinToken, error) {
	var t NewJoinToken
	if err := c.call(ctx, http.MethodPost, "/api/v1/tokens", nil, spec, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// ListJoinTokens returns one page of join tokens.
func (c *Client) ListJoinTokens(ctx context.Context, o ListOptions) (*Page[JoinToken], error) {
	return list[JoinToken](ctx, c, "/api/v1/tokens", o.values())
}

// RevokeJoinToken makes a join token unusable.
func (c *Client) RevokeJoinToken(ctx context.Context, id string) error {
	return c.del(ctx, "tokens", "join token", id)
}

// ListLinks returns the links of the node the client talks to.
func (c *Client) ListLinks(ctx context.Context) ([]Link, error) {
	p, err := list[Link](ctx, c, "/api/v1/links", nil)
	if err != nil {
		return nil, err
	}
	return p.Items, nil
}

// RevokeHost revokes a host's certificate (by name or ID), which cuts its
// link, and returns the host.
func (c *Client) RevokeHost(ctx context.Context, idOrName string) (*lobby.Host, error) {
	p, err := item("hosts", "host", idOrName)
	if err != nil {
		return nil, err
	}
	var h lobby.Host
	if err := c.call(ctx, http.MethodPost, p+"/actions", nil, map[string]string{"action": "revoke"}, &h); err != nil {
		return nil, err
	}
	return &h, nil
}

// RemoveHost deletes a host (by name or ID) that is not linked and has no
// desktops (KindConflict otherwise).
func (c *Client) RemoveHost(ctx context.Context, idOrName string) error {
	return c.del(ctx, "hosts", "host", idOrName)
}
