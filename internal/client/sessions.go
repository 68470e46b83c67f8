package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"lobby/internal/lobby"
)

// ListAssignments returns the caller's assignments (everyone's for
// operators and administrators).
func (c *Client) ListAssignments(ctx context.Context, o ListOptions) (*Page[lobby.Assignment], error) {
	return list[lobby.Assignment](ctx, c, "/api/v1/assignments", o.values())
}

// ListOffers returns the pools the caller's policies give them, with the
// assignment they hold in each, if any.
func (c *Client) ListOffers(ctx context.Context) (*Page[Offer], error) {
	return list[Offer](ctx, c, "/api/v1/offers", nil)
}

// Connect gets a desktop from a pool, or the one the caller already holds
// there, with a fresh one-time console ticket. It returns KindForbidden
// when no policy offers the pool and KindConflict when it is exhausted.
func (c *Client) Connect(ctx context.Context, pool string) (*ConnectResult, error) {
	if pool == "" {
		return nil, lobby.Errorf(lobby.KindInvalid, "no pool given")
	}
	var r ConnectResult
	in := map[string]string{"pool": pool}
	if err := c.call(ctx, http.MethodPost, "/api/v1/connect", nil, in, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// Release logs off from a desktop: the session ends and the policy's
// release plan runs.
func (c *Client) Release(ctx context.Context, desktopID string) (*ReleaseResult, error) {
	if desktopID == "" {
		return nil, lobby.Errorf(lobby.KindInvalid, "no desktop given")
	}
	var r ReleaseResult
	in := map[string]string{"desktop": desktopID}
	if err := c.call(ctx, http.MethodPost, "/api/v1/release", nil, in, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// ListAudit returns one page of audit events, newest first; Next is the
// Before cursor of the next (older) page.
func (c *Client) ListAudit(ctx context.Context, aq AuditQuery) (*Page[lobby.AuditEvent], error) {
	q := url.Values{}
	if aq.Q != "" {
		q.Set("q", aq.Q)
	}
	if aq.Before != "" {
		q.Set("before", aq.Before)
	}
	if aq.Limit > 0 {
		q.Set("limit", strconv.Itoa(aq.Limit))
	}
	return list[lobby.AuditEvent](ctx, c, "/api/v1/audit", q)
}
