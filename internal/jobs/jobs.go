package jobs

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivertype"

	"lobby/internal/hostconn"
	"lobby/internal/lobby"
	"lobby/internal/store"
)

// Config configures a Queue.
type Config struct {
	Store   store.Store
	Hosts   *hostconn.Registry
	SiteID  int
	Workers int // concurrent jobs on this node; default 20
	Logger  *slog.Logger
	// PollInterval is how often idle workers look for jobs that no
	// insert announced: retries falling due, jobs taken over or handed
	// over. Default 1 s on SQLite, where River wakes this node's workers
	// at once for each job inserted outside a transaction (see
	// sqliteDriver; SQLite is one node, and every insert is this one's),
	// so the poll is an idle cost that bounds only those; 50 ms on
	// PostgreSQL, where jobs are moved between nodes' queues without a
	// notification. A job inserted inside a transaction (InsertTx) would
	// wait for the poll on SQLite: there are none.
	PollInterval time.Duration

	// Instance names this process (cluster.Member.Instance); River's
	// client ID is site-N/INSTANCE. Default a random one.
	Instance string
	// Leader reports whether this node runs the singleton duties (the
	// takeover of dead nodes' jobs); nil means always (one node).
	Leader func() bool
	// Fenced reports that this node must stop working at once: another
	// process took its site ID (cluster.Member.Lost). Nil means never.
	Fenced func() bool
	// TakeoverAfter is how long a node's heartbeat must stand still
	// before its jobs are taken over (default DefaultTakeoverAfter;
	// negative: never, leaving it to an operator's reassign).
	TakeoverAfter time.Duration
	// ScanEvery is how often the nodes are watched and, on the leader,
	// dead nodes' jobs are looked for (default 500 ms).
	ScanEvery time.Duration
	Now       func() time.Time
}

// The default poll intervals (see Config.PollInterval).
const (
	sqlitePollInterval = time.Second
	pgPollInterval     = 50 * time.Millisecond
)

// DefaultTakeoverAfter is how long a node's heartbeat (every second) must
// stand still before its jobs move: three missed beats. A node thought
// dead too early costs a resent command that its host answers from
// memory, never a second run (see the package comment).
const DefaultTakeoverAfter = 3 * time.Second

func (c *Config) validate() error {
	if c.Store == nil || c.Hosts == nil {
		return errors.New("jobs: Store and Hosts are required")
	}
	if c.SiteID <= 0 {
		return fmt.Errorf("jobs: site ID must be positive, got %d", c.SiteID)
	}
	if c.Workers == 0 {
		c.Workers = 20
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Instance == "" {
		c.Instance = lobby.NewID("ins")
	}
	if strings.ContainsAny(c.Instance, "/ ") {
		return fmt.Errorf("jobs: instance %q must not contain a slash or a space", c.Instance)
	}
	if c.Leader == nil {
		c.Leader = func() bool { return true }
	}
	if c.Fenced == nil {
		c.Fenced = func() bool { return false }
	}
	if c.TakeoverAfter == 0 {
		c.TakeoverAfter = DefaultTakeoverAfter
	}
	if c.ScanEvery == 0 {
		c.ScanEvery = 500 * time.Millisecond
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// sqliteDriver is River's SQLite driver without its listener. That
// listener polls a table of notifications (every 50 ms) unless the client
// is PollOnly; and a PollOnly client still believes inserts are announced
// through it, so nothing but the workers' poll finds a new job. A driver
// without a listener is what River knows how to run on SQLite: it wakes
// this process's workers itself for every job inserted outside a
// transaction, and cancels running jobs at once, with no table polled
// (River reads PollOnly only of a driver with a listener).
type sqliteDriver struct{ *riversqlite.Driver }

func (sqliteDriver) SupportsListener() bool     { return false }
func (sqliteDriver) SupportsListenNotify() bool { return false }

// riverClient is the part of *river.Client[TTx] the queue uses; it does
// not depend on TTx, so one Queue serves both drivers.
type riverClient interface {
	Insert(ctx context.Context, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error)
	JobList(ctx context.Context, params *river.JobListParams) (*river.JobListResult, error)
	JobGet(ctx context.Context, id int64) (*rivertype.JobRow, error)
	JobRetry(ctx context.Context, id int64) (*rivertype.JobRow, error)
	JobCancel(ctx context.Context, id int64) (*rivertype.JobRow, error)
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
	StopAndCancel(ctx context.Context) error
}

// Queue enqueues and runs Lobby's background work.
type Queue struct {
	cfg    Config
	client riverClient
	db     db
	log    *slog.Logger
	nodes  *watch
	runs   *runs

	// starting is held to start the client and read to insert: River
	// (v0.43) sets a producer's fetch trigger in Start without a lock,
	// and an insert outside a transaction pulls that trigger on drivers
	// without a listener (SQLite): a node leaving maintenance mode
	// restarted its queue while the pool manager inserted, a data race.
	starting    sync.RWMutex
	fenceOnce   sync.Once
	fenceCtx    context.Context // done once fenced
	fenceCancel context.CancelFunc
	stop        context.CancelFunc
	done        chan struct{}
}

// New builds a Queue on the store's database. Call Start to run workers.
func New(cfg Config) (*Queue, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	q := &Queue{cfg: cfg, log: cfg.Logger.With("component", "jobs"), nodes: newWatch(cfg.TakeoverAfter),
		runs: newRuns()}
	q.fenceCtx, q.fenceCancel = context.WithCancel(context.Background())
	workers := river.NewWorkers()
	river.AddWorker(workers, &powerWorker{q: q})
	river.AddWorker(workers, &provisionWorker{q: q})
	rcfg := &river.Config{
		ID:     q.ClientID(),
		Logger: cfg.Logger.With("component", "river"),
		Queues: map[string]river.QueueConfig{
			SiteQueue(cfg.SiteID): {MaxWorkers: cfg.Workers},
			river.QueueDefault:    {MaxWorkers: max(1, cfg.Workers/4)},
		},
		Workers:       workers,
		Middleware:    []rivertype.Middleware{river.WorkerMiddlewareFunc(q.guard)},
		FetchCooldown: 10 * time.Millisecond,
		MaxAttempts:   5,
		JobTimeout:    5 * time.Minute,
	}
	var err error
	switch h := cfg.Store.(type) {
	case interface{ Pool() *pgxpool.Pool }:
		rcfg.FetchPollInterval = cmp.Or(cfg.PollInterval, pgPollInterval)
		q.db = db{pg: h.Pool()}
		q.client, err = river.NewClient(riverpgxv5.New(h.Pool()), rcfg)
	case interface{ Writer() *sql.DB }:
		q.db = db{lite: h.Writer()}
		rcfg.FetchPollInterval = cmp.Or(cfg.PollInterval, sqlitePollInterval)
		q.client, err = river.NewClient[*sql.Tx](sqliteDriver{riversqlite.New(h.Writer())}, rcfg)
	default:
		return nil, fmt.Errorf("jobs: store %T offers no database handle for the queue", cfg.Store)
	}
	if err != nil {
		return nil, fmt.Errorf("create work queue: %w", err)
	}
	return q, nil
}

// ClientID is this process's River client ID, site-N/INSTANCE: it is what
// a running job's attempted_by names.
func (q *Queue) ClientID() string {
	return fmt.Sprintf("site-%d/%s", q.cfg.SiteID, q.cfg.Instance)
}

// Start runs the workers, the watch of the other nodes and, while this
// node leads, the takeover of dead nodes' jobs, until Stop.
func (q *Queue) Start(ctx context.Context) error {
	if q.Fenced() {
		return errFenced // only a restart brings a fenced node back
	}
	q.watchNodes(ctx) // route with the cluster in view from the first job
	q.starting.Lock()
	err := q.client.Start(ctx)
	q.starting.Unlock()
	if err != nil {
		return err
	}
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	q.stop, q.done = cancel, make(chan struct{})
	go func() { defer close(q.done); q.watchLoop(bg) }()
	return nil
}

// Stop lets running jobs finish (until ctx ends) and stops the workers.
func (q *Queue) Stop(ctx context.Context) error {
	if q.stop != nil {
		q.stop()
		<-q.done
	}
	if q.Fenced() {
		return nil // the fence stopped the workers
	}
	return q.client.Stop(ctx)
}

// Job is a job as the API shows it.
type Job struct {
	ID          string          `json:"id"`
	Kind        string          `json:"kind"`
	State       string          `json:"state"`
	Attempt     int             `json:"attempt"`
	MaxAttempts int             `json:"max_attempts"`
	Args        json.RawMessage `json:"args"`
	// Site owns the job: its node runs it (0: any node, for jobs of
	// releases before site queues).
	Site int `json:"site"`
	// SiteID is the node running the job, or that last ran it.
	SiteID    int        `json:"site_id,omitempty"`
	Result    string     `json:"result,omitempty"`
	Errors    []string   `json:"errors"`
	TakenOver []Takeover `json:"taken_over,omitempty"`
	Created   time.Time  `json:"created"`
	Finalized *time.Time `json:"finalized,omitempty"`
}

// Takeover records that a job moved from a site to another without an
// operator's hand: its node died (or an operator reassigned it, By set).
type Takeover struct {
	From    int       `json:"from_site"`
	To      int       `json:"to_site"`
	At      time.Time `json:"at"`
	Running bool      `json:"running"` // it was running on From, and starts again
	By      string    `json:"by,omitempty"`
}

// output is what a worker records on its job.
type output struct {
	SiteID int    `json:"site_id"`
	Result string `json:"result,omitempty"`
}

// keepTakeovers bounds the takeovers a job's metadata keeps (its key
// lobby_takeovers, written by move).
const keepTakeovers = 10

func jobFromRow(r *rivertype.JobRow) Job {
	j := Job{
		ID: strconv.FormatInt(r.ID, 10), Kind: r.Kind, State: string(r.State),
		Attempt: r.Attempt, MaxAttempts: r.MaxAttempts, Args: json.RawMessage(r.EncodedArgs),
		Errors: []string{}, Created: r.CreatedAt, Finalized: r.FinalizedAt,
	}
	j.Site, _ = queueSite(r.Queue)
	j.SiteID, _ = runner(r)
	var out output
	if raw := r.Output(); len(raw) > 0 && json.Unmarshal(raw, &out) == nil {
		j.Result = out.Result
		if r.State != rivertype.JobStateRunning && out.SiteID != 0 {
			j.SiteID = out.SiteID
		}
	}
	j.TakenOver = takeoversOf(r)
	for _, e := range r.Errors {
		j.Errors = append(j.Errors, e.Error)
	}
	return j
}

func takeoversOf(r *rivertype.JobRow) []Takeover {
	var meta struct {
		T []Takeover `json:"lobby_takeovers"`
	}
	if len(r.Metadata) > 0 && json.Unmarshal(r.Metadata, &meta) == nil {
		return meta.T
	}
	return nil
}

// ListOptions filters and pages List.
type ListOptions struct {
	State string
	Kind  string
	Site  int    // only the jobs a site owns
	After string // a job ID: list older jobs
	Limit int
}

// List returns jobs newest first.
func (q *Queue) List(ctx context.Context, opt ListOptions) ([]Job, error) {
	limit := opt.Limit
	if limit <= 0 || limit > store.MaxLimit {
		limit = store.DefaultLimit
	}
	p := river.NewJobListParams().OrderBy(river.JobListOrderByID, river.SortOrderDesc).First(limit)
	if opt.State != "" {
		if !validState(opt.State) {
			return nil, lobby.Errorf(lobby.KindInvalid, "job state %q is not valid: use available, scheduled, running, retryable, completed, cancelled or discarded", opt.State)
		}
		p = p.States(rivertype.JobState(opt.State))
	}
	if opt.Kind != "" {
		p = p.Kinds(opt.Kind)
	}
	if opt.Site != 0 {
		if opt.Site < 0 || opt.Site > 65535 {
			return nil, lobby.Errorf(lobby.KindInvalid, "site %d is not a site ID: give a number from 1 to 65535", opt.Site)
		}
		p = p.Queues(SiteQueue(opt.Site))
	}
	if opt.After != "" {
		id, err := strconv.ParseInt(opt.After, 10, 64)
		if err != nil {
			return nil, lobby.Errorf(lobby.KindInvalid, "after %q is not a job ID", opt.After)
		}
		p = p.Where("id < @after", river.NamedArgs{"after": id})
	}
	res, err := q.client.JobList(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	jobs := make([]Job, 0, len(res.Jobs))
	for _, r := range res.Jobs {
		jobs = append(jobs, jobFromRow(r))
	}
	return jobs, nil
}

func validState(s string) bool {
	for _, st := range rivertype.JobStates() {
		if string(st) == s {
			return true
		}
	}
	return false
}

// Get returns one job.
func (q *Queue) Get(ctx context.Context, id string) (Job, error) {
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		return Job{}, lobby.Errorf(lobby.KindNotFound, "job %q does not exist", id)
	}
	r, err := q.client.JobGet(ctx, n)
	if errors.Is(err, river.ErrNotFound) {
		return Job{}, lobby.Errorf(lobby.KindNotFound, "job %q does not exist", id)
	}
	if err != nil {
		return Job{}, fmt.Errorf("get job %s: %w", id, err)
	}
	return jobFromRow(r), nil
}

// insert enqueues a job in the queue of the site that should run it.
func (q *Queue) insert(ctx context.Context, args river.JobArgs, desktopID string) (Job, error) {
	site := q.route(ctx, desktopID)
	q.starting.RLock()
	res, err := q.client.Insert(ctx, args, &river.InsertOpts{Queue: SiteQueue(site)})
	q.starting.RUnlock()
	if err != nil {
		return Job{}, fmt.Errorf("enqueue %s: %w", args.Kind(), err)
	}
	return jobFromRow(res.Job), nil
}
