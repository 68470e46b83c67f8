// Package store is the storage boundary: every durable fact of Lobby lives
// behind the Store interface, implemented on embedded SQLite (standalone)
// and PostgreSQL (cluster) with one schema and one shared test suite
// (storetest).
package store

import (
	"context"
	"errors"
	"time"

	"lobby/internal/lobby"
)

// Sentinel errors. Implementations wrap them so callers test with errors.Is.
var (
	// ErrNotFound: no row matches (unknown ID, used or expired ticket).
	ErrNotFound = errors.New("not found")
	// ErrConflict: a unique constraint or a state check failed (name taken,
	// desktop already assigned).
	ErrConflict = errors.New("conflict")
	// ErrRevoked: the host's certificate was revoked (SetHostReport).
	ErrRevoked = errors.New("host revoked")
	// ErrExhausted: AssignFree found no free running desktop in the pool.
	ErrExhausted = errors.New("no free desktop")
	// ErrSchemaTooNew: a newer Lobby migrated the database beyond what
	// this one may run on (its compatible floor, see Schema, is above this
	// binary's schema version); opening it is refused.
	ErrSchemaTooNew = errors.New("database schema is newer than this binary")
)

// Dialects.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
)

// ListOptions pages a list by ID: items with ID greater than After, at most
// Limit of them (0 means DefaultLimit; more than MaxLimit is capped).
type ListOptions struct {
	After string
	Limit int
}

// Page sizes.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// All reads every page of a list: list is one of the List methods bound
// to its context, id the ID items are paged by.
func All[T any](list func(ListOptions) ([]T, error), id func(T) string) ([]T, error) {
	var out []T
	opt := ListOptions{Limit: MaxLimit}
	for {
		items, err := list(opt)
		if err != nil {
			return nil, err
		}
		out = append(out, items...)
		if len(items) < opt.Limit {
			return out, nil
		}
		opt.After = id(items[len(items)-1])
	}
}

// Token is an API bearer token. Only its SHA-256 hash is stored.
type Token struct {
	ID      string
	UserID  string
	Hash    string // hex SHA-256 of the secret
	Name    string // "login", or a name given by the user
	Created time.Time
	Expires time.Time // zero: never
	Revoked bool
}

// Ticket authorizes one WebSocket upgrade to one desktop's console for one
// user, once, until Expires. Only its hash is stored.
type Ticket struct {
	Hash      string
	UserID    string
	DesktopID string
	Created   time.Time
	Expires   time.Time
}

// JoinToken admits host agents to the cluster: a secret, stored only as
// its hash, usable MaxUses times until Expires unless revoked.
type JoinToken struct {
	ID        string    `json:"id"`
	Hash      string    `json:"-"` // hex SHA-256 of the secret
	Note      string    `json:"note,omitempty"`
	CreatedBy string    `json:"created_by"` // username
	Created   time.Time `json:"created"`
	Expires   time.Time `json:"expires"`
	MaxUses   int       `json:"max_uses"`
	Uses      int       `json:"uses"`
	Revoked   bool      `json:"revoked"`
}

// Lease is a singleton duty's holder: the site ID and process instance
// that runs it, until Expires, in its Term.
type Lease struct {
	Name     string    `json:"name"`
	Holder   int       `json:"holder"`
	Instance string    `json:"instance"`
	Term     int64     `json:"term"`
	Expires  time.Time `json:"expires"`
}

// NodeHealth is what a node records of its own health, for the cluster's
// health check: facts only it can know. Durations are kept to the
// microsecond.
type NodeHealth struct {
	SiteID   int
	Instance string    // the process that recorded it (see RegisterNode)
	Recorded time.Time // by the database's clock, set by RecordNodeHealth
	// ClockSkew is the node's clock minus the database's, measured at the
	// middle of a round trip (within half of StoreRTT).
	ClockSkew time.Duration
	StoreRTT  time.Duration // the round trip of that measure
	LoopLag   time.Duration // how late the node's watchdog ticker ran, at worst, lately
	// NotReady is why the node's watchdog takes it out of the load
	// balancer (what /readyz says); "" when ready.
	NotReady string
	// CAFingerprint is the SHA-256 (hex) of the CA certificate the node
	// uses; LinkCert is its link certificate (PEM), which peers check.
	CAFingerprint string
	LinkCert      string
	// WebCertExpires is when the node's HTTPS certificate expires; zero
	// for plain HTTP.
	WebCertExpires time.Time
	Probes         []NodeProbe // of every live node's address, itself included
	Links          []AgentLink // the agents linked to it
}

// NodeProbe is one node's probe of another's address (GET
// /api/v1/health/ping): the round trip, or why it failed.
type NodeProbe struct {
	SiteID  int
	Address string
	At      time.Time // by the prober's clock
	RTT     time.Duration
	Error   string
}

// AgentLink is an agent linked to a node, with the link's round trip.
type AgentLink struct {
	HostID string
	Host   string
	Since  time.Time
	RTT    time.Duration
}

// HostReport is what an agent's link reports about its host.
type HostReport struct {
	State        lobby.HostState
	SiteID       int // the node the link is on
	Seen         time.Time
	Address      string
	AgentVersion string
	CPUPercent   float64
	MemTotal     int64
	MemUsed      int64
	Running      int
}

// DesktopFilter narrows ListDesktops; zero fields match everything.
type DesktopFilter struct {
	PoolID     string
	HostID     string
	AssignedTo string
	Power      lobby.PowerState
}

// AssignmentFilter narrows ListAssignments; zero fields match everything.
type AssignmentFilter struct {
	UserID    string
	DesktopID string
	PoolID    string
	PolicyID  string
	// Disconnected, when true, keeps only assignments whose session is not
	// connected (DisconnectedAt set).
	Disconnected bool
}

// AuditFilter narrows ListAudit; zero fields match everything. Query
// matches a substring of actor, action, target or detail.
type AuditFilter struct {
	Query string
	Since time.Time
	// Before pages backwards: events with ID < Before (0 means newest).
	Before int64
	Limit  int
}

// PoolCounts summarizes a pool's desktops.
type PoolCounts struct {
	Total    int `json:"total"`    // all desktops in the pool, in any state
	Free     int `json:"free"`     // running and unassigned: ready to hand out
	Assigned int `json:"assigned"` // held by someone
	Pending  int `json:"pending"`  // creating or starting
	// Ready: unassigned and running or on its way (creating, starting),
	// what a pool's MinFree counts. Idle: unassigned, stopped or
	// suspended, which can be started instead of creating new ones.
	Ready int `json:"ready"`
	Idle  int `json:"idle"`
}

// Queries is everything that can be done in or out of a transaction.
// Methods return ErrNotFound for unknown IDs and ErrConflict for unique
// violations, wrapped.
type Queries interface {
	// Users. The password hash is stored beside the user, never returned
	// except by GetUserByName for checking a sign-in.
	CreateUser(ctx context.Context, u *lobby.User, passwordHash string) error
	GetUser(ctx context.Context, id string) (*lobby.User, error)
	GetUserByName(ctx context.Context, username string) (u *lobby.User, passwordHash string, err error)
	ListUsers(ctx context.Context, opt ListOptions) ([]lobby.User, error)
	UpdateUser(ctx context.Context, u *lobby.User) error // role, groups, disabled
	SetPassword(ctx context.Context, userID, passwordHash string) error
	// DeleteUser also deletes the user's tokens, tickets and assignments
	// and frees their desktops (without any release plan: apply it first).
	DeleteUser(ctx context.Context, id string) error
	// CountUsersWithRole counts disabled users too.
	CountUsersWithRole(ctx context.Context, role lobby.Role) (int, error)
	// LockUser serializes concurrent transactions of one user (SELECT FOR
	// UPDATE on PostgreSQL; SQLite transactions are already serial).
	LockUser(ctx context.Context, userID string) error

	// API tokens.
	CreateToken(ctx context.Context, t *Token) error
	GetToken(ctx context.Context, hash string) (*Token, error)
	RevokeToken(ctx context.Context, id string) error
	RevokeUserTokens(ctx context.Context, userID string) error
	DeleteExpiredTokens(ctx context.Context, now time.Time) (int, error)

	// Console tickets. RedeemTicket marks the ticket used and returns it in
	// one statement; it returns ErrNotFound when the ticket is unknown,
	// already used, or expired at now.
	CreateTicket(ctx context.Context, t *Ticket) error
	RedeemTicket(ctx context.Context, hash string, now time.Time) (*Ticket, error)
	// DeleteExpiredTickets deletes the tickets, used or not, that expired
	// at or before now and returns how many.
	DeleteExpiredTickets(ctx context.Context, now time.Time) (int, error)

	// Join tokens. CreateJoinToken sets t.ID (prefix "jtk") and t.Created
	// when empty. UseJoinToken counts one use in one statement when the
	// token is not revoked, not expired at now and has uses left:
	// ErrNotFound when unknown, ErrConflict when it cannot be used (the
	// caller reads it to say why). ListJoinTokens pages by ID.
	CreateJoinToken(ctx context.Context, t *JoinToken) error
	GetJoinToken(ctx context.Context, id string) (*JoinToken, error)
	ListJoinTokens(ctx context.Context, opt ListOptions) ([]JoinToken, error)
	UseJoinToken(ctx context.Context, id string, now time.Time) error
	RevokeJoinToken(ctx context.Context, id string) error

	// Hosts. UpsertHost inserts or updates by name and sets h.ID; it
	// leaves the link fields of an existing host (certificate, revocation,
	// report) as they are.
	UpsertHost(ctx context.Context, h *lobby.Host) error
	GetHost(ctx context.Context, id string) (*lobby.Host, error)
	GetHostByName(ctx context.Context, name string) (*lobby.Host, error)
	ListHosts(ctx context.Context, opt ListOptions) ([]lobby.Host, error)
	SetHostState(ctx context.Context, id string, state lobby.HostState, siteID int, seen time.Time) error
	// CreateHost inserts a new host (an agent joining), setting h.ID
	// (prefix "hst") and h.Created; ErrConflict when the name is taken.
	CreateHost(ctx context.Context, h *lobby.Host) error
	// SetHostCert records the serial of the host's new link certificate
	// and clears Revoked (a re-join after revocation is a new identity);
	// ErrNotFound.
	SetHostCert(ctx context.Context, id, serial string) error
	// SetHostPendingCert records the serial of a host's renewed
	// certificate, which PromoteHostCert makes its certificate once the
	// agent links with it; ErrRevoked, ErrNotFound.
	SetHostPendingCert(ctx context.Context, id, serial string) error
	// PromoteHostCert makes the pending certificate with the serial the
	// host's (the old one stops working); ErrNotFound when it is not
	// pending.
	PromoteHostCert(ctx context.Context, id, serial string) error
	// RevokeHost marks the host revoked and down; ErrNotFound.
	RevokeHost(ctx context.Context, id string) error
	// SetHostReport records a report of a linked host; a revoked host
	// stays down whatever the report says (a report in flight when it was
	// revoked), and the report's other fields are recorded with
	// ErrRevoked, so that the node cuts its link. ErrNotFound.
	SetHostReport(ctx context.Context, id string, r HostReport) error
	// SetHostDown records that a host's link to the node of siteID ended,
	// unless the host has linked to another node since (its site ID is
	// no longer siteID): that node's record stands. It reports whether it
	// wrote; ErrNotFound for an unknown host.
	SetHostDown(ctx context.Context, id string, siteID int, seen time.Time) (bool, error)
	// DeleteHost removes a host; ErrConflict while it still has desktops
	// (their records must go first), ErrNotFound.
	DeleteHost(ctx context.Context, id string) error

	// Desktops. Names are unique per host. A new desktop is unassigned
	// (d.AssignedTo must be empty). DeleteDesktop also deletes its
	// assignment and tickets.
	CreateDesktop(ctx context.Context, d *lobby.Desktop) error
	GetDesktop(ctx context.Context, id string) (*lobby.Desktop, error)
	GetDesktopByName(ctx context.Context, hostID, name string) (*lobby.Desktop, error)
	ListDesktops(ctx context.Context, f DesktopFilter, opt ListOptions) ([]lobby.Desktop, error)
	// UpdateDesktop writes every mutable field but AssignedTo (which only
	// the assignment methods change, so a stale copy never frees or takes a
	// desktop) and sets Updated.
	UpdateDesktop(ctx context.Context, d *lobby.Desktop) error
	SetDesktopPower(ctx context.Context, id string, power lobby.PowerState, consolePort int) error
	DeleteDesktop(ctx context.Context, id string) error
	PoolCounts(ctx context.Context, poolID string) (PoolCounts, error)

	// Pools. DeletePool returns ErrConflict while desktops remain in it.
	CreatePool(ctx context.Context, p *lobby.Pool) error
	GetPool(ctx context.Context, id string) (*lobby.Pool, error)
	GetPoolByName(ctx context.Context, name string) (*lobby.Pool, error)
	ListPools(ctx context.Context, opt ListOptions) ([]lobby.Pool, error)
	UpdatePool(ctx context.Context, p *lobby.Pool) error
	DeletePool(ctx context.Context, id string) error

	// Policies.
	CreatePolicy(ctx context.Context, p *lobby.Policy) error
	GetPolicy(ctx context.Context, id string) (*lobby.Policy, error)
	GetPolicyByName(ctx context.Context, name string) (*lobby.Policy, error)
	ListPolicies(ctx context.Context, opt ListOptions) ([]lobby.Policy, error)
	UpdatePolicy(ctx context.Context, p *lobby.Policy) error
	DeletePolicy(ctx context.Context, id string) error

	// Assignments. AssignFree atomically takes one running, unassigned
	// desktop of a.PoolID, marks it assigned to a.UserID, inserts a (setting
	// a.ID and a.DesktopID, and a.Created when zero) and returns the desktop; ErrExhausted
	// when there is none. Two concurrent calls never get the same desktop.
	AssignFree(ctx context.Context, a *lobby.Assignment) (*lobby.Desktop, error)
	// AssignDesktop assigns a given unassigned desktop (persistent
	// re-assignment, admin assign); ErrConflict when it is taken.
	AssignDesktop(ctx context.Context, a *lobby.Assignment) error
	GetAssignment(ctx context.Context, id string) (*lobby.Assignment, error)
	// ExistingAssignments returns the IDs among ids that name an
	// assignment, in one query however many there are (a node checks
	// its open console sessions with it every second).
	ExistingAssignments(ctx context.Context, ids []string) (map[string]bool, error)
	ListAssignments(ctx context.Context, f AssignmentFilter) ([]lobby.Assignment, error)
	// SetConnected records a session connecting (connected=true clears
	// DisconnectedAt) or disconnecting (sets DisconnectedAt to at).
	SetConnected(ctx context.Context, assignmentID string, connected bool, at time.Time) error
	// DeleteAssignment removes the assignment and clears the desktop's
	// AssignedTo in the same transaction.
	DeleteAssignment(ctx context.Context, id string) error

	// Audit log: append-only, listed newest first.
	AppendAudit(ctx context.Context, e *lobby.AuditEvent) error
	ListAudit(ctx context.Context, f AuditFilter) ([]lobby.AuditEvent, error)

	// Nodes. RegisterNode inserts the node of n.SiteID for the process
	// instance, or takes the row over when its heartbeat is before
	// staleBefore (its node died) or it is the same instance; ErrConflict
	// when a live node of another instance holds the site ID. Heartbeat
	// records that the instance is alive and returns the mode the row
	// asks for (an operator drains a node through it); ErrConflict when
	// the row is no longer this instance's (taken over or removed).
	RegisterNode(ctx context.Context, n *lobby.Node, instance string, staleBefore time.Time) error
	Heartbeat(ctx context.Context, siteID int, instance string, now time.Time) (lobby.NodeMode, error)
	GetNode(ctx context.Context, siteID int) (*lobby.Node, error)
	ListNodes(ctx context.Context) ([]lobby.Node, error)
	SetNodeMode(ctx context.Context, siteID int, mode lobby.NodeMode) error
	DeleteNode(ctx context.Context, siteID int) error

	// Leases. AcquireLease takes or renews the lease name for (holder,
	// instance) until now+ttl when it is free, expired at now, or already
	// this instance's; the term grows by one at each change of instance.
	// held is false (with the current holder in l) when another instance
	// holds it. ReleaseLease gives it up if this instance holds it.
	AcquireLease(ctx context.Context, name string, holder int, instance string, now time.Time, ttl time.Duration) (l Lease, held bool, err error)
	ReleaseLease(ctx context.Context, name, instance string) error
	GetLease(ctx context.Context, name string) (*Lease, error)

	// Node health. DatabaseTime is the database's own clock, the one
	// reference every node's clock is compared with. RecordNodeHealth
	// inserts or replaces the record of h.SiteID and sets h.Recorded to
	// the database's clock; ErrNotFound unless the process h.Instance
	// holds the site ID (see RegisterNode).
	// ListNodeHealth lists the records by site ID.
	DatabaseTime(ctx context.Context) (time.Time, error)
	RecordNodeHealth(ctx context.Context, h *NodeHealth) error
	ListNodeHealth(ctx context.Context) ([]NodeHealth, error)

	// Settings: small named values (cluster CA, feature flags).
	GetSetting(ctx context.Context, key string) (string, error)
	SetSetting(ctx context.Context, key, value string) error
}

// AuthEpocher is implemented by stores that count, in this process, the
// changes that can make an authenticated token invalid (revocations,
// changes to users), so that a cache of authenticated tokens can tell
// when to forget them: AuthEpoch moves after each such change commits.
type AuthEpocher interface {
	AuthEpoch() uint64
}

// Store is a connection to the database.
type Store interface {
	Queries
	// InTx runs fn in one transaction, committed when fn returns nil.
	// On SQLite it holds the single writer, and concurrent transactions
	// are committed together (each in a savepoint of one database
	// transaction; fn's statements then ignore ctx's cancellation); on
	// PostgreSQL it is READ COMMITTED, with LockUser and row locks where a
	// rule needs them, and fn may run twice: when AssignFree must wait
	// for locked desktops, the transaction is rolled back and fn runs
	// again in a new one, so every effect of fn must be in the
	// transaction (or be set again by the second run).
	InTx(ctx context.Context, fn func(q Queries) error) error
	// Dialect is SQLite or Postgres.
	Dialect() string
	// SchemaVersion is the migration version the database is at.
	SchemaVersion(ctx context.Context) (int64, error)
	// Schema is the migration version and the compatible floor.
	Schema(ctx context.Context) (Schema, error)
	Ping(ctx context.Context) error
	Close() error
}
