package manage

import (
	"context"
	"errors"
	"fmt"

	"lobby/internal/link"
	"lobby/internal/lobby"
	"lobby/internal/store"
)

// Linker is what manage needs of a node's links (link.Hub): the list, and
// cutting a host off.
type Linker interface {
	Links() []link.Status
	Cut(hostID, why string) bool
}

var _ Linker = (*link.Hub)(nil)

// Host looks a host up by name, then by ID.
func (s *Service) Host(ctx context.Context, ref string) (*lobby.Host, error) {
	h, err := s.Store.GetHostByName(ctx, ref)
	if errors.Is(err, store.ErrNotFound) {
		h, err = s.Store.GetHost(ctx, ref)
	}
	return h, StoreErr(err, fmt.Sprintf("host %q", ref))
}

// Links lists this node's links to agents, and its latest refused
// attempts; anyone who may read hosts may read it. A node without links
// (Hub nil) has an empty list.
func (s *Service) Links(ctx context.Context, a Actor) ([]link.Status, error) {
	if err := Allow(a, lobby.PermRead); err != nil {
		return nil, err
	}
	if s.Hub == nil {
		return []link.Status{}, nil
	}
	return s.Hub.Links(), nil
}

// linked reports whether the host has a link up to this node.
func (s *Service) linked(hostID string) bool {
	if s.Hub == nil {
		return false
	}
	for _, st := range s.Hub.Links() {
		if st.HostID == hostID && st.State == "up" {
			return true
		}
	}
	return false
}

// linkedElsewhere names the node a host is linked to when that is
// another node, alive as far as this one can tell: the store says the
// host is up at that node's site, and this node's link to it is up. A
// host last seen at a node that is gone is not linked anywhere.
func (s *Service) linkedElsewhere(h *lobby.Host) string {
	if s.Hub == nil || h.State != lobby.HostUp || h.SiteID == 0 {
		return ""
	}
	for _, st := range s.Hub.Links() {
		if st.Kind == "node" && st.State == "up" && st.PeerSiteID == h.SiteID && st.SiteID != h.SiteID {
			return st.Peer
		}
	}
	return ""
}

// RevokeHost revokes a host's link certificate and cuts its link at once;
// its agent is refused from then on, until it joins again with a new
// token. Administrators only. Errors: not found; conflict for the node's
// own in-process agent, which has no certificate.
func (s *Service) RevokeHost(ctx context.Context, a Actor, ref string) (*lobby.Host, error) {
	if err := Allow(a, lobby.PermConfigure); err != nil {
		return nil, err
	}
	h, err := s.Host(ctx, ref)
	if err != nil {
		return nil, err
	}
	if h.CertSerial == "" {
		return nil, lobby.Errorf(lobby.KindConflict, "host %s is served by the node's own in-process agent and has no link certificate to revoke", h.Name)
	}
	err = s.Store.InTx(ctx, func(q store.Queries) error {
		if err := q.RevokeHost(ctx, h.ID); err != nil {
			return StoreErr(err, "host "+h.Name)
		}
		return s.audit(ctx, q, a, "host.revoke", h.ID, fmt.Sprintf("host %s: certificate %s revoked", h.Name, h.CertSerial))
	})
	if err != nil {
		return nil, err
	}
	if s.Hub != nil {
		s.Hub.Cut(h.ID, "the host's certificate was revoked")
	}
	return s.Host(ctx, h.ID)
}

// RemoveHost deletes a host's record. It is refused (conflict) while the
// host is linked to this node or to another live one (revoke it or stop
// its agent first) and
// while desktops remain on it (delete them first). Administrators only;
// not found for an unknown host.
func (s *Service) RemoveHost(ctx context.Context, a Actor, ref string) error {
	if err := Allow(a, lobby.PermConfigure); err != nil {
		return err
	}
	h, err := s.Host(ctx, ref)
	if err != nil {
		return err
	}
	if s.linked(h.ID) {
		return lobby.Errorf(lobby.KindConflict, "host %s is linked to this node: revoke it first (lobby hosts revoke %s) or stop its agent, then remove it", h.Name, h.Name)
	}
	if node := s.linkedElsewhere(h); node != "" {
		return lobby.Errorf(lobby.KindConflict, "host %s is linked to node %s: revoke it first (lobby hosts revoke %s) or stop its agent, then remove it", h.Name, node, h.Name)
	}
	err = s.Store.InTx(ctx, func(q store.Queries) error {
		if err := q.DeleteHost(ctx, h.ID); errors.Is(err, store.ErrConflict) {
			return lobby.Errorf(lobby.KindConflict, "host %s still has desktops: delete its desktops first (lobby desktops list --host %s), then the host", h.Name, h.Name)
		} else if err != nil {
			return StoreErr(err, "host "+h.Name)
		}
		return s.audit(ctx, q, a, "host.remove", h.ID, "host "+h.Name+" removed")
	})
	if err != nil {
		return err
	}
	// A link that came up since the check ends too: its host is gone.
	if s.Hub != nil {
		s.Hub.Cut(h.ID, "the host was removed")
	}
	return nil
}
