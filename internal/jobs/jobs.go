// Package jobs is the work queue: power and provisioning run here, in
// workers of a River queue kept in the store (SQLite or PostgreSQL), never
// in HTTP handlers. Every job records the site ID of the node that ran it.
package jobs

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
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
	// PollInterval is how often idle workers look for new jobs; SQLite
	// has no notifications, so this bounds job latency. Default 50 ms.
	PollInterval time.Duration
}

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
	if c.PollInterval == 0 {
		c.PollInterval = 50 * time.Millisecond
	}
	return nil
}

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
}

// Queue enqueues and runs Lobby's background work.
type Queue struct {
	cfg    Config
	client riverClient
}

// New builds a Queue on the store's database. Call Start to run workers.
func New(cfg Config) (*Queue, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	q := &Queue{cfg: cfg}
	workers := river.NewWorkers()
	river.AddWorker(workers, &powerWorker{q: q})
	river.AddWorker(workers, &provisionWorker{q: q})
	rcfg := &river.Config{
		ID:                fmt.Sprintf("site-%d", cfg.SiteID),
		Logger:            cfg.Logger.With("component", "river"),
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: cfg.Workers}},
		Workers:           workers,
		FetchCooldown:     10 * time.Millisecond,
		FetchPollInterval: cfg.PollInterval,
		MaxAttempts:       5,
		JobTimeout:        5 * time.Minute,
	}
	var err error
	switch db := cfg.Store.(type) {
	case interface{ Pool() *pgxpool.Pool }:
		q.client, err = river.NewClient(riverpgxv5.New(db.Pool()), rcfg)
	case interface{ Writer() *sql.DB }:
		rcfg.PollOnly = true
		q.client, err = river.NewClient(riversqlite.New(db.Writer()), rcfg)
	default:
		return nil, fmt.Errorf("jobs: store %T offers no database handle for the queue", cfg.Store)
	}
	if err != nil {
		return nil, fmt.Errorf("create work queue: %w", err)
	}
	return q, nil
}

// Start runs the workers until Stop.
func (q *Queue) Start(ctx context.Context) error { return q.client.Start(ctx) }

// Stop lets running jobs finish (until ctx ends) and stops the workers.
func (q *Queue) Stop(ctx context.Context) error { return q.client.Stop(ctx) }

// Job is a job as the API shows it.
type Job struct {
	ID          string          `json:"id"`
	Kind        string          `json:"kind"`
	State       string          `json:"state"`
	Attempt     int             `json:"attempt"`
	MaxAttempts int             `json:"max_attempts"`
	Args        json.RawMessage `json:"args"`
	SiteID      int             `json:"site_id,omitempty"` // the node that last ran it
	Result      string          `json:"result,omitempty"`
	Errors      []string        `json:"errors"`
	Created     time.Time       `json:"created"`
	Finalized   *time.Time      `json:"finalized,omitempty"`
}

// output is what a worker records on its job.
type output struct {
	SiteID int    `json:"site_id"`
	Result string `json:"result,omitempty"`
}

func jobFromRow(r *rivertype.JobRow) Job {
	j := Job{
		ID: strconv.FormatInt(r.ID, 10), Kind: r.Kind, State: string(r.State),
		Attempt: r.Attempt, MaxAttempts: r.MaxAttempts, Args: json.RawMessage(r.EncodedArgs),
		Errors: []string{}, Created: r.CreatedAt, Finalized: r.FinalizedAt,
	}
	var out output
	if raw := r.Output(); len(raw) > 0 && json.Unmarshal(raw, &out) == nil {
		j.SiteID, j.Result = out.SiteID, out.Result
	}
	for _, e := range r.Errors {
		j.Errors = append(j.Errors, e.Error)
	}
	return j
}

// ListOptions filters and pages List.
type ListOptions struct {
	State string
	Kind  string
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

func (q *Queue) insert(ctx context.Context, args river.JobArgs) (Job, error) {
	res, err := q.client.Insert(ctx, args, nil)
	if err != nil {
		return Job{}, fmt.Errorf("enqueue %s: %w", args.Kind(), err)
	}
	return jobFromRow(res.Job), nil
}
