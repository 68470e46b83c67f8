package link

import (
	"context"
	"errors"
	"fmt"
	"time"

	"lobby/internal/hostconn"
	"lobby/internal/lobby"
	"lobby/internal/store"
)

var _ hostconn.Router = (*Hub)(nil)

// Route implements hostconn.Router: a host not linked to this node is
// reached through the node the store says it is linked to, over the node
// link to it. Errors: KindNotFound for an unknown host, KindUnavailable
// when it is linked nowhere, or to a node this one has no link to.
func (h *Hub) Route(ctx context.Context, hostID string) (hostconn.Conn, error) {
	if c, ok := h.Hosts.Linked(hostID); ok {
		return c, nil // it linked here since
	}
	host, err := h.Store.GetHost(ctx, hostID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, lobby.Errorf(lobby.KindNotFound, "host %s does not exist: it was removed", hostID)
	case err != nil:
		return nil, fmt.Errorf("find the node of host %s: %w", hostID, err)
	case host.Revoked:
		return nil, lobby.Errorf(lobby.KindUnavailable, "host %s was revoked: join it again with a new token", host.Name)
	case host.State != lobby.HostUp || host.SiteID == h.SiteID:
		return nil, lobby.Errorf(lobby.KindUnavailable, "host %s is not linked to this node or any other: check that its agent is running", host.Name)
	}
	p := h.peerOf(host.SiteID)
	if p == nil {
		return nil, lobby.Errorf(lobby.KindUnavailable, "host %s is linked to the node of site %d, which this node (%s) has no link to now: see `lobby links list`", host.Name, host.SiteID, h.Name)
	}
	return p.host(host.ID, host.Name), nil
}

// placeCache keeps Placeable's reading of the store for a moment: the
// pool manager asks at every pass and after bursts of connects.
type placeCache struct {
	at  time.Time
	ids []string
}

const placeFresh = time.Second

// Placeable lists the hosts that can take new desktops: those linked to
// this node (or run in-process), and those linked to a node this one has
// a link up to, which it reaches to create and start their desktops.
func (h *Hub) Placeable(ctx context.Context) []string {
	ids := h.Hosts.IDs()
	nl := &h.nl
	nl.mu.Lock()
	if len(nl.peers) == 0 {
		nl.mu.Unlock()
		return ids // a standalone node reads no store here
	}
	if h.now().Sub(nl.place.at) < placeFresh {
		remote := nl.place.ids
		nl.mu.Unlock()
		return merge(ids, remote)
	}
	sites := make(map[int]bool, len(nl.peers))
	for site := range nl.peers {
		sites[site] = true
	}
	nl.mu.Unlock()
	var remote []string
	opt := store.ListOptions{Limit: store.MaxLimit}
	for {
		hs, err := h.Store.ListHosts(ctx, opt)
		if err != nil {
			if ctx.Err() == nil {
				h.Logger.Warn("list hosts linked to other nodes", "err", err)
			}
			return ids
		}
		for _, x := range hs {
			if x.State == lobby.HostUp && !x.Revoked && sites[x.SiteID] {
				remote = append(remote, x.ID)
			}
		}
		if len(hs) < opt.Limit {
			break
		}
		opt.After = hs[len(hs)-1].ID
	}
	nl.mu.Lock()
	nl.place = placeCache{at: h.now(), ids: remote}
	nl.mu.Unlock()
	return merge(ids, remote)
}

// merge appends to local the IDs of remote it lacks.
func merge(local, remote []string) []string {
	seen := make(map[string]bool, len(local))
	for _, id := range local {
		seen[id] = true
	}
	out := local
	for _, id := range remote {
		if !seen[id] {
			out = append(out, id)
		}
	}
	return out
}
