package lobby

import "time"

// PowerState is the power state of a desktop as its host last reported it.
type PowerState string

// Power states.
const (
	PowerUnknown   PowerState = "unknown"   // not yet reported, or the host is unreachable
	PowerCreating  PowerState = "creating"  // being provisioned
	PowerStopped   PowerState = "stopped"   // exists, not running
	PowerStarting  PowerState = "starting"  // start requested
	PowerRunning   PowerState = "running"   // console reachable
	PowerSuspended PowerState = "suspended" // paused in memory
	PowerStopping  PowerState = "stopping"  // stop requested
	PowerDeleting  PowerState = "deleting"  // delete requested
	PowerError     PowerState = "error"     // the last action failed; see the job
)

// PowerAction is what happens to a desktop's power when its assignment is
// released.
type PowerAction string

// Power actions on release.
const (
	PowerKeep    PowerAction = "keep"    // leave it running
	PowerStop    PowerAction = "stop"    // shut it down
	PowerSuspend PowerAction = "suspend" // pause it
)

// AssignMode says whether a user keeps the same desktop across sessions.
type AssignMode string

// Assignment modes.
const (
	Persistent    AssignMode = "persistent"     // the same desktop every time, until released by the plan
	NonPersistent AssignMode = "non-persistent" // any free ready desktop; returned to the pool on release
)

// HostState is whether a host's agent is linked.
type HostState string

// Host states.
const (
	HostUp   HostState = "up"
	HostDown HostState = "down"
)

// Host is a machine that runs desktops through one agent.
type Host struct {
	ID       string    `json:"id"`
	Name     string    `json:"name"`
	Provider string    `json:"provider"`
	State    HostState `json:"state"`
	SiteID   int       `json:"site_id"` // the node the host's agent is linked to
	LastSeen time.Time `json:"last_seen"`
	Created  time.Time `json:"created"`

	CertSerial   string  `json:"cert_serial,omitempty"` // hex serial of the host's link certificate; empty for an in-process agent
	Revoked      bool    `json:"revoked,omitempty"`     // its certificate was revoked: its links are refused
	AgentVersion string  `json:"agent_version,omitempty"`
	Address      string  `json:"address,omitempty"` // where its link comes from, as the node sees it
	CPUPercent   float64 `json:"cpu_percent"`       // of all the host's CPUs, 0-100
	MemTotal     int64   `json:"mem_total"`         // bytes
	MemUsed      int64   `json:"mem_used"`          // bytes
	Running      int     `json:"desktops_running"`
}

// Desktop is one virtual desktop.
type Desktop struct {
	ID          string     `json:"id"`
	Name        string     `json:"name"`
	HostID      string     `json:"host_id"`
	PoolID      string     `json:"pool_id,omitempty"`
	Power       PowerState `json:"power"`
	ConsoleKind string     `json:"console_kind"` // "vnc"
	ConsolePort int        `json:"console_port,omitempty"`
	AssignedTo  string     `json:"assigned_to,omitempty"` // user ID
	Tags        []string   `json:"tags"`
	Created     time.Time  `json:"created"`
	Updated     time.Time  `json:"updated"`
}

// Ready reports whether d can be handed to a new user now.
func (d *Desktop) Ready() bool { return d.Power == PowerRunning && d.AssignedTo == "" }

// Pool is a set of desktops handed out alike.
type Pool struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	MinSize     int       `json:"min_size"`     // desktops kept provisioned
	MaxSize     int       `json:"max_size"`     // never more than this
	MinFree     int       `json:"min_free"`     // free running desktops kept ready ahead of demand
	NamePattern string    `json:"name_pattern"` // e.g. "demo-{n}"
	Template    string    `json:"template"`     // provider template name
	Created     time.Time `json:"created"`
}

// ReleasePlan says when an assignment ends.
type ReleasePlan struct {
	OnLogoff          bool   `json:"on_logoff"`          // release when the user logs off
	DisconnectMinutes int    `json:"disconnect_minutes"` // release after this long disconnected; 0 never
	AtTime            string `json:"at_time"`            // release every day at HH:MM (node's local time); "" never
}

// Policy says what users and groups may get.
type Policy struct {
	ID          string      `json:"id"`
	Name        string      `json:"name"`
	Pools       []string    `json:"pools"`  // pool IDs
	Users       []string    `json:"users"`  // usernames; "*" is everyone
	Groups      []string    `json:"groups"` // group names
	MaxDesktops int         `json:"max_desktops"`
	Mode        AssignMode  `json:"mode"`
	Release     ReleasePlan `json:"release"`
	PowerPlan   PowerAction `json:"power_on_release"`
	Priority    int         `json:"priority"` // higher wins when several policies offer a pool
	Created     time.Time   `json:"created"`
}

// User is a person who signs in.
type User struct {
	ID       string    `json:"id"`
	Username string    `json:"username"`
	Role     Role      `json:"role"`
	Groups   []string  `json:"groups"`
	Disabled bool      `json:"disabled"`
	Created  time.Time `json:"created"`
}

// Assignment is a user holding a desktop.
type Assignment struct {
	ID             string     `json:"id"`
	DesktopID      string     `json:"desktop_id"`
	UserID         string     `json:"user_id"`
	PoolID         string     `json:"pool_id"`
	PolicyID       string     `json:"policy_id"`
	Mode           AssignMode `json:"mode"`
	Connected      bool       `json:"connected"`
	DisconnectedAt *time.Time `json:"disconnected_at,omitempty"`
	Created        time.Time  `json:"created"`
}

// AuditEvent records who changed what, when and from where. The log is
// append-only.
type AuditEvent struct {
	ID     int64     `json:"id"`
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"`  // username, or "system"
	Action string    `json:"action"` // e.g. "pool.create"
	Target string    `json:"target"` // the ID or name acted on
	Detail string    `json:"detail"`
	Remote string    `json:"remote"` // client address
}

// NodeMode is whether a node takes new work.
type NodeMode string

// Node modes.
const (
	NodeNormal      NodeMode = "normal"
	NodeMaintenance NodeMode = "maintenance" // its schema differs from the database's: administrators only
	NodeDraining    NodeMode = "draining"    // finishing what it has, taking nothing new
)

// Node is one Lobby server process of the cluster, known by its site ID.
type Node struct {
	SiteID        int       `json:"site_id"`
	Name          string    `json:"name"`
	Address       string    `json:"address"` // its listen URL
	Version       string    `json:"version"`
	SchemaVersion int64     `json:"schema_version"`
	Mode          NodeMode  `json:"mode"`
	Started       time.Time `json:"started"`
	Heartbeat     time.Time `json:"heartbeat"`
	// Instance names the process holding the site ID now (it changes at
	// each start); read from the store, not written through Node.
	Instance string `json:"instance,omitempty"`
}
