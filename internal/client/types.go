package client

import (
	"encoding/json"
	"net/url"
	"strconv"
	"time"

	"lobby/internal/lobby"
)

// ListOptions pages a list: items after the cursor After (a previous
// page's Next), at most Limit of them (0: the server's default).
type ListOptions struct {
	After string
	Limit int
}

func (o ListOptions) values() url.Values {
	q := url.Values{}
	if o.After != "" {
		q.Set("after", o.After)
	}
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	return q
}

// Page is one page of a list. Next is the cursor of the following page,
// "" on the last.
type Page[T any] struct {
	Items []T    `json:"items"`
	Next  string `json:"next"`
}

// PoolCounts summarizes a pool's desktops.
type PoolCounts struct {
	Total    int `json:"total"`
	Free     int `json:"free"` // running and unassigned
	Assigned int `json:"assigned"`
	Pending  int `json:"pending"` // creating or starting
}

// PoolWithCounts is a pool as the API lists it. Counts is nil when the
// server did not send them.
type PoolWithCounts struct {
	lobby.Pool
	Counts *PoolCounts `json:"counts,omitempty"`
}

// PoolSpec is what creates a pool.
type PoolSpec struct {
	Name        string `json:"name"`
	MinSize     int    `json:"min_size"`
	MaxSize     int    `json:"max_size"`
	MinFree     int    `json:"min_free"`
	NamePattern string `json:"name_pattern,omitempty"`
	Template    string `json:"template,omitempty"`
}

// PoolUpdate changes a pool; nil fields are left as they are (a pointer
// to 0 sets 0).
type PoolUpdate struct {
	MinSize     *int    `json:"min_size,omitempty"`
	MaxSize     *int    `json:"max_size,omitempty"`
	MinFree     *int    `json:"min_free,omitempty"`
	NamePattern *string `json:"name_pattern,omitempty"`
	Template    *string `json:"template,omitempty"`
}

// DesktopFilter narrows a desktop list; empty fields do not filter.
type DesktopFilter struct {
	Pool       string // pool ID or name, as the server accepts it
	Host       string
	AssignedTo string // user ID
}

// Desktop power actions.
const (
	ActionStart   = "start"
	ActionStop    = "stop"
	ActionSuspend = "suspend"
	ActionResume  = "resume"
	ActionRestart = "restart"
	ActionDelete  = "delete"
)

// UserSpec creates a user.
type UserSpec struct {
	Username string     `json:"username"`
	Password string     `json:"password"`
	Groups   []string   `json:"groups"`
	Role     lobby.Role `json:"role"`
}

// UserUpdate changes a user; nil fields are left as they are.
type UserUpdate struct {
	Role     *lobby.Role `json:"role,omitempty"`
	Groups   *[]string   `json:"groups,omitempty"`
	Disabled *bool       `json:"disabled,omitempty"`
}

// PolicySpec creates a policy. Pools may be names or IDs.
type PolicySpec struct {
	Name        string            `json:"name"`
	Pools       []string          `json:"pools"`
	Users       []string          `json:"users"`
	Groups      []string          `json:"groups"`
	MaxDesktops int               `json:"max_desktops"`
	Mode        lobby.AssignMode  `json:"mode,omitempty"`
	Release     lobby.ReleasePlan `json:"release"`
	PowerPlan   lobby.PowerAction `json:"power_on_release,omitempty"`
	Priority    int               `json:"priority"`
}

// PolicyUpdate changes a policy; nil fields are left as they are, and a
// list given replaces the policy's list. Pools may be names or IDs.
type PolicyUpdate struct {
	Pools       *[]string          `json:"pools,omitempty"`
	Users       *[]string          `json:"users,omitempty"`
	Groups      *[]string          `json:"groups,omitempty"`
	MaxDesktops *int               `json:"max_desktops,omitempty"`
	Mode        *lobby.AssignMode  `json:"mode,omitempty"`
	Release     *ReleaseUpdate     `json:"release,omitempty"`
	PowerPlan   *lobby.PowerAction `json:"power_on_release,omitempty"`
	Priority    *int               `json:"priority,omitempty"`
}

// ReleaseUpdate changes parts of a policy's release plan; nil fields are
// left as they are.
type ReleaseUpdate struct {
	OnLogoff          *bool   `json:"on_logoff,omitempty"`
	DisconnectMinutes *int    `json:"disconnect_minutes,omitempty"`
	AtTime            *string `json:"at_time,omitempty"`
}

// Job is a unit of background work as the API shows it.
type Job struct {
	ID          FlexString      `json:"id"`
	Kind        string          `json:"kind"`
	State       string          `json:"state"`
	Attempt     int             `json:"attempt"`
	MaxAttempts int             `json:"max_attempts"`
	Args        json.RawMessage `json:"args,omitempty"`
	Site        int             `json:"site"`    // the site that owns it (0: any node)
	SiteID      int             `json:"site_id"` // the node running it, or that last ran it
	Errors      []JobError      `json:"errors"`
	TakenOver   []JobTakeover   `json:"taken_over,omitempty"`
	Created     time.Time       `json:"created"`
	Finalized   *time.Time      `json:"finalized,omitempty"`
}

// JobFilter narrows a job list; empty fields do not filter.
type JobFilter struct {
	State string
	Kind  string
	Site  int // only the jobs this site owns
}

// JobTakeover is one move of a job from a dead site to another.
type JobTakeover struct {
	From    int       `json:"from_site"`
	To      int       `json:"to_site"`
	At      time.Time `json:"at"`
	Running bool      `json:"running"`
	By      string    `json:"by,omitempty"` // the operator; empty for the automatic takeover
}

// SiteJobs is the answer of POST /api/v1/jobs/actions.
type SiteJobs struct {
	Action string   `json:"action"`
	Site   int      `json:"site"`
	ToSite int      `json:"to_site,omitempty"`
	Jobs   []string `json:"jobs"`
}

// JobError is one failed attempt of a job. The API may send it as an
// object or as a plain string (Error only).
type JobError struct {
	At      *time.Time `json:"at,omitempty"`
	Attempt int        `json:"attempt,omitempty"`
	Error   string     `json:"error"`
}

// UnmarshalJSON accepts an object or a string.
func (e *JobError) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		return json.Unmarshal(b, &e.Error)
	}
	type plain JobError
	return json.Unmarshal(b, (*plain)(e))
}

// FlexString is an identifier the server may send as a JSON string or
// number; it is always a string here.
type FlexString string

// UnmarshalJSON accepts a string or a number.
func (s *FlexString) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		return json.Unmarshal(b, (*string)(s))
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return err
	}
	*s = FlexString(n.String())
	return nil
}

// AuditQuery selects audit events, newest first: those matching Q, older
// than the cursor Before (a previous page's Next), at most Limit.
type AuditQuery struct {
	Q      string
	Before string
	Limit  int
}

// Offer is a pool the caller may connect to.
type Offer struct {
	Pool    lobby.Pool        `json:"pool"`
	Policy  string            `json:"policy"` // the policy's name
	Mode    lobby.AssignMode  `json:"mode"`
	Counts  PoolCounts        `json:"counts"`
	Holding *lobby.Assignment `json:"holding,omitempty"` // the caller's assignment in the pool
}

// LoginResult is the answer to a sign-in.
type LoginResult struct {
	Token   string     `json:"token"`
	Expires time.Time  `json:"expires"`
	User    lobby.User `json:"user"`
}

// ConnectResult is a desktop handed to the caller with a one-time console
// ticket. VNCURL is relative to the server unless absolute.
type ConnectResult struct {
	Desktop    lobby.Desktop    `json:"desktop"`
	Assignment lobby.Assignment `json:"assignment"`
	VNCURL     string           `json:"vnc_url"`
	Ticket     string           `json:"ticket"`
	Expires    time.Time        `json:"expires"`
}

// ReleaseResult is the answer to a release: Released is false when the
// desktop was not held.
type ReleaseResult struct {
	Released bool          `json:"released"`
	Desktop  lobby.Desktop `json:"desktop"`
}
