package client

import (
	"context"
	"net/http"

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
	return list[Job](ctx, c, "/api/v1/jobs", q)
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
