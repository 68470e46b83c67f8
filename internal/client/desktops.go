package client

import (
	"context"
	"net/http"
	"strconv"

	"lobby/internal/lobby"
)

// ListDesktops returns one page of desktops matching f.
func (c *Client) ListDesktops(ctx context.Context, f DesktopFilter, o ListOptions) (*Page[lobby.Desktop], error) {
	q := o.values()
	for k, v := range map[string]string{"pool": f.Pool, "host": f.Host, "assigned_to": f.AssignedTo} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return list[lobby.Desktop](ctx, c, "/api/v1/desktops", q)
}

// GetDesktop returns a desktop by ID.
func (c *Client) GetDesktop(ctx context.Context, id string) (*lobby.Desktop, error) {
	var d lobby.Desktop
	if err := c.get(ctx, "desktops", "desktop", id, &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// DesktopAction queues a power action (one of the Action constants) on a
// desktop and returns its job.
func (c *Client) DesktopAction(ctx context.Context, id, action string) (*Job, error) {
	p, err := item("desktops", "desktop", id)
	if err != nil {
		return nil, err
	}
	var r struct {
		Job Job `json:"job"`
	}
	in := map[string]string{"action": action}
	if err := c.call(ctx, http.MethodPost, p+"/actions", nil, in, &r); err != nil {
		return nil, err
	}
	return &r.Job, nil
}

// ListHosts returns one page of hosts.
func (c *Client) ListHosts(ctx context.Context, o ListOptions) (*Page[lobby.Host], error) {
	return list[lobby.Host](ctx, c, "/api/v1/hosts", o.values())
}

// ListJobs returns one page of jobs matching f.
func (c *Client) ListJobs(ctx context.Context, f JobFilter, o ListOptions) (*Page[Job], error) {
	q := o.values()
	if f.State != "" {
		q.Set("state", f.State)
	}
	if f.Kind != "" {
		q.Set("kind", f.Kind)
	}
	if f.Site != 0 {
		q.Set("site", strconv.Itoa(f.Site))
	}
	return list[Job](ctx, c, "/api/v1/jobs", q)
}

// ReassignJobs moves the jobs of a site whose node is gone to the site
// toSite, or, when toSite is 0, each to its host's node.
func (c *Client) ReassignJobs(ctx context.Context, site, toSite int) (*SiteJobs, error) {
	return c.siteJobs(ctx, map[string]any{"action": "reassign", "site": site, "to_site": toSite})
}

// DeleteSiteJobs deletes the jobs of a site whose node is gone.
func (c *Client) DeleteSiteJobs(ctx context.Context, site int) (*SiteJobs, error) {
	return c.siteJobs(ctx, map[string]any{"action": "delete", "site": site})
}

func (c *Client) siteJobs(ctx context.Context, in map[string]any) (*SiteJobs, error) {
	var out SiteJobs
	if err := c.call(ctx, http.MethodPost, "/api/v1/jobs/actions", nil, in, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetHost returns a host by ID.
func (c *Client) GetHost(ctx context.Context, id string) (*lobby.Host, error) {
	var h lobby.Host
	if err := c.get(ctx, "hosts", "host", id, &h); err != nil {
		return nil, err
	}
	return &h, nil
}

// GetJob returns a job by ID.
func (c *Client) GetJob(ctx context.Context, id string) (*Job, error) {
	var j Job
	if err := c.get(ctx, "jobs", "job", id, &j); err != nil {
		return nil, err
	}
	return &j, nil
}
