package web

import (
	"fmt"
	"net/http"
	"slices"
	"time"

	"lobby/internal/link"
	"lobby/internal/linkproto"
	"lobby/internal/lobby"
)

// adminLinkRoutes are the pages of host agents' links: the link list,
// join tokens, and revoking or removing a host.
func (s *Server) adminLinkRoutes(mux *http.ServeMux) {
	mux.Handle("GET /admin/links", s.page(lobby.PermRead, s.linksPage))
	mux.Handle("GET /admin/links/table", s.page(lobby.PermRead, s.linksFragment))

	mux.Handle("GET /admin/tokens", s.page(lobby.PermConfigure, s.tokensPage))
	mux.Handle("POST /admin/tokens", s.page(lobby.PermConfigure, s.tokenCreate))
	mux.Handle("POST /admin/tokens/{id}/revoke", s.page(lobby.PermConfigure, s.tokenRevoke))

	mux.Handle("POST /admin/hosts/{id}/revoke", s.page(lobby.PermConfigure, s.hostRevoke))
	mux.Handle("POST /admin/hosts/{id}/remove", s.page(lobby.PermConfigure, s.hostRemove))
}

// linksData is the link list: hosts' links up to this node (by host
// name), its links to the other nodes (by site ID), and the latest
// refused attempts (newest first).
type linksData struct {
	Up      []link.Status
	Nodes   []link.Status
	Refused []link.Status
	NodeURL string // for the command lines of the empty state
}

func (s *Server) linksData(r *http.Request) (*linksData, error) {
	ls, err := s.Manage.Links(r.Context(), s.actor(r))
	if err != nil {
		return nil, err
	}
	d := &linksData{NodeURL: nodeURL(r)}
	for _, l := range ls {
		switch {
		case l.State == "refused":
			d.Refused = append(d.Refused, l)
		case l.Kind == "node":
			d.Nodes = append(d.Nodes, l)
		default:
			d.Up = append(d.Up, l)
		}
	}
	slices.SortFunc(d.Up, func(a, b link.Status) int { return compareNatural(a.Peer, b.Peer) })
	slices.SortFunc(d.Nodes, func(a, b link.Status) int { return a.PeerSiteID - b.PeerSiteID })
	slices.SortStableFunc(d.Refused, func(a, b link.Status) int { return b.Since.Compare(a.Since) })
	return d, nil
}

func (s *Server) linksPage(w http.ResponseWriter, r *http.Request) error {
	d, err := s.linksData(r)
	if err != nil {
		return err
	}
	return s.render(w, r, http.StatusOK, "admin_links", "Links", d)
}

// linksFragment is the live part of the link list (htmx polls it).
func (s *Server) linksFragment(w http.ResponseWriter, r *http.Request) error {
	d, err := s.linksData(r)
	if err != nil {
		return err
	}
	return s.fragment(w, r, "admin_links", "links", d)
}

// nodeURL is this node's URL as the browser reached it: what an agent
// beside that browser gives as --hub.
func nodeURL(r *http.Request) string {
	scheme := "http"
	if isTLS(r) {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// linkFuncs are the template functions of the link and host pages.
func linkFuncs() map[string]any {
	return map[string]any{
		"dur":        func(d linkproto.Duration) string { return time.Duration(d).String() },
		"ms":         func(v float64) string { return fmt.Sprintf("%.1f ms", v) },
		"bytes":      humanBytes,
		"cpu":        func(v float64) string { return fmt.Sprintf("%.0f%%", v) },
		"until":      until,
		"tokenClass": tokenClass,
	}
}

// humanBytes writes a size in binary units: 512 B, 1.5 KiB, 7.8 GiB.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// hostLink is the host's link to this node, if it is up.
func hostLink(ls []link.Status, hostID string) *link.Status {
	i := slices.IndexFunc(ls, func(l link.Status) bool { return l.State == "up" && l.HostID == hostID })
	if i < 0 {
		return nil
	}
	return &ls[i]
}
