package manage

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"lobby/internal/cluster"
	"lobby/internal/lobby"
	"lobby/internal/store"
)

// NodeView is a node as the cluster page and `lobby nodes list` show it.
type NodeView struct {
	lobby.Node
	Alive  bool `json:"alive"`  // a heartbeat within cluster.DefaultStaleAfter
	Leader bool `json:"leader"` // it holds the singleton lease
}

// Nodes lists the cluster's nodes.
func (s *Service) Nodes(ctx context.Context, a Actor) ([]NodeView, error) {
	if err := Allow(a, lobby.PermRead); err != nil {
		return nil, err
	}
	ns, err := s.Store.ListNodes(ctx)
	if err != nil {
		return nil, err
	}
	lease, err := s.Store.GetLease(ctx, cluster.SingletonLease)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	now := s.now()
	out := make([]NodeView, len(ns))
	for i, n := range ns {
		out[i] = NodeView{Node: n, Alive: now.Sub(n.Heartbeat) < cluster.DefaultStaleAfter}
		out[i].Leader = out[i].Alive && lease != nil && lease.Holder == n.SiteID && lease.Expires.After(now)
	}
	return out, nil
}

// parseSite reads a site ID from a path.
func parseSite(ref string) (int, error) {
	id, err := strconv.Atoi(ref)
	if err != nil || id < 1 || id > 65535 {
		return 0, lobby.Errorf(lobby.KindInvalid, "%q is not a site ID: give a number from 1 to 65535", ref)
	}
	return id, nil
}

// SetNodeMode drains a node (it gives up the singleton duties and tells
// the load balancer to stop sending it people) or returns it to normal.
func (s *Service) SetNodeMode(ctx context.Context, a Actor, ref string, mode lobby.NodeMode) error {
	if err := Allow(a, lobby.PermConfigure); err != nil {
		return err
	}
	if mode != lobby.NodeDraining && mode != lobby.NodeNormal {
		return lobby.FieldErrorf("action", "a node can be drained or resumed, not set to %q", mode)
	}
	site, err := parseSite(ref)
	if err != nil {
		return err
	}
	return s.Store.InTx(ctx, func(q store.Queries) error {
		if err := q.SetNodeMode(ctx, site, mode); err != nil {
			return StoreErr(err, fmt.Sprintf("node %d", site))
		}
		return s.audit(ctx, q, a, "node."+map[lobby.NodeMode]string{lobby.NodeDraining: "drain", lobby.NodeNormal: "resume"}[mode], ref, "mode "+string(mode))
	})
}

// RemoveNode forgets a dead node; a live one is refused.
func (s *Service) RemoveNode(ctx context.Context, a Actor, ref string) error {
	if err := Allow(a, lobby.PermConfigure); err != nil {
		return err
	}
	site, err := parseSite(ref)
	if err != nil {
		return err
	}
	return s.Store.InTx(ctx, func(q store.Queries) error {
		n, err := q.GetNode(ctx, site)
		if err != nil {
			return StoreErr(err, fmt.Sprintf("node %d", site))
		}
		if age := s.now().Sub(n.Heartbeat); age < cluster.DefaultStaleAfter {
			return lobby.Errorf(lobby.KindConflict, "node %d (%s) is alive (its last heartbeat was %s ago): stop it first, or drain it", site, n.Name, age.Round(time.Second))
		}
		if err := q.DeleteNode(ctx, site); err != nil {
			return StoreErr(err, fmt.Sprintf("node %d", site))
		}
		return s.audit(ctx, q, a, "node.remove", ref, "removed node "+n.Name)
	})
}
