package manage

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"lobby/internal/cluster"
	"lobby/internal/lobby"
	"lobby/internal/store"
)

// SiteJobs says what an operator's reassign or delete did to the jobs of
// a site.
type SiteJobs struct {
	Action string   `json:"action"` // reassign or delete
	Site   int      `json:"site"`
	ToSite int      `json:"to_site,omitempty"` // reassign: 0 sent each job to its host's node
	Jobs   []string `json:"jobs"`              // the IDs of the jobs moved or deleted
}

// ReassignJobs moves the jobs a site holds (unfinished in its queue, or
// running there) to the site toSite, or, when toSite is 0, each to the
// node holding its host's link (else this node). The site's node must be
// gone (no row, or no heartbeat for cluster.DefaultStaleAfter), toSite's
// alive.
func (s *Service) ReassignJobs(ctx context.Context, a Actor, site, toSite int) (SiteJobs, error) {
	if err := Allow(a, lobby.PermOperate); err != nil {
		return SiteJobs{}, err
	}
	if err := s.deadSite(ctx, "site", site); err != nil {
		return SiteJobs{}, err
	}
	if toSite != 0 {
		if err := s.liveSite(ctx, site, toSite); err != nil {
			return SiteJobs{}, err
		}
	}
	ids, err := s.Queue.Reassign(ctx, site, toSite, a.User.Username)
	if err != nil {
		return SiteJobs{}, err
	}
	where := "to their hosts' nodes"
	if toSite != 0 {
		where = fmt.Sprintf("to site %d", toSite)
	}
	return SiteJobs{Action: "reassign", Site: site, ToSite: toSite, Jobs: ids},
		s.audit(ctx, s.Store, a, "jobs.reassign", fmt.Sprintf("site %d", site), fmt.Sprintf("%d jobs of site %d moved %s%s", len(ids), site, where, listIDs(ids)))
}

// DeleteSiteJobs deletes the jobs a site holds (see ReassignJobs); its
// node must be gone.
func (s *Service) DeleteSiteJobs(ctx context.Context, a Actor, site int) (SiteJobs, error) {
	if err := Allow(a, lobby.PermOperate); err != nil {
		return SiteJobs{}, err
	}
	if err := s.deadSite(ctx, "site", site); err != nil {
		return SiteJobs{}, err
	}
	ids, err := s.Queue.DeleteSite(ctx, site)
	if err != nil {
		return SiteJobs{}, err
	}
	return SiteJobs{Action: "delete", Site: site, Jobs: ids},
		s.audit(ctx, s.Store, a, "jobs.delete", fmt.Sprintf("site %d", site), fmt.Sprintf("%d jobs of site %d deleted%s", len(ids), site, listIDs(ids)))
}

// validSite checks a site ID given in field.
func validSite(field string, site int) error {
	if site < 1 || site > 65535 {
		return lobby.FieldErrorf(field, "%d is not a site ID: give a number from 1 to 65535", site)
	}
	return nil
}

// deadSite refuses a site whose node is alive: its jobs are its own.
func (s *Service) deadSite(ctx context.Context, field string, site int) error {
	if err := validSite(field, site); err != nil {
		return err
	}
	n, err := s.Store.GetNode(ctx, site)
	if errors.Is(err, store.ErrNotFound) {
		return nil // the site no longer exists
	}
	if err != nil {
		return err
	}
	if age := s.now().Sub(n.Heartbeat); age < cluster.DefaultStaleAfter {
		return lobby.Errorf(lobby.KindConflict, "site %d is node %s, which is alive (its last heartbeat was %s ago): its jobs are its own; stop that node first (or wait until its heartbeat is %s old)",
			site, n.Name, age.Round(time.Second), cluster.DefaultStaleAfter)
	}
	return nil
}

// liveSite refuses a destination that is not a live node other than from.
func (s *Service) liveSite(ctx context.Context, from, to int) error {
	if err := validSite("to_site", to); err != nil {
		return err
	}
	if to == from {
		return lobby.FieldErrorf("to_site", "site %d is the site the jobs leave: give another site, or leave to_site out", to)
	}
	n, err := s.Store.GetNode(ctx, to)
	if errors.Is(err, store.ErrNotFound) {
		return lobby.FieldErrorf("to_site", "site %d has no node: give a live node's site ID (lobby nodes list), or leave to_site out", to)
	}
	if err != nil {
		return err
	}
	if age := s.now().Sub(n.Heartbeat); age >= cluster.DefaultStaleAfter {
		return lobby.FieldErrorf("to_site", "site %d is node %s, which is not alive (its last heartbeat was %s ago): give a live node's site ID, or leave to_site out", to, n.Name, age.Round(time.Second))
	}
	return nil
}

// listIDs is ": job 1, 2, 3" (the first 20), or "" for none.
func listIDs(ids []string) string {
	if len(ids) == 0 {
		return ""
	}
	more := ""
	if len(ids) > 20 {
		ids, more = ids[:20], fmt.Sprintf(" and %d more", len(ids)-20)
	}
	return ": job " + strings.Join(ids, ", ") + more
}
