package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"lobby/internal/pki"
	"log/slog"
	"os"
	"time"

	"github.com/jackc/pgx/v5"

	"lobby/internal/auth"
	"lobby/internal/provider"
	"lobby/internal/provider/memory"
	"lobby/internal/server"
	"lobby/internal/store/pgtest"
)

// NodeConfig configures a node started in this process.
type NodeConfig struct {
	// Store is "sqlite" (default) or "postgres".
	Store string
	// Postgres is the server's URL for Store "postgres"; the node gets a
	// fresh schema in it, dropped on Close. Empty: TEST_DATABASE_URL, and
	// without it a throwaway server (pgtest.Start) for this node.
	Postgres string
	// DataDir is where the node's data directory is made (on disk);
	// default the system's temporary directory.
	DataDir string
	// Provider is the in-process agent's provider; default a memory
	// provider (synthetic desktops, no processes).
	Provider provider.Provider
	// HashSlots is the number of concurrent password hashes; 0 is one per
	// CPU, the node's default.
	HashSlots int
	// PasswordHash is the node's argon2id settings; zero is the node's
	// default (auth.DefaultParams).
	PasswordHash auth.Params
	Logger       *slog.Logger
}

// passwordHash is the argon2id settings the node runs with.
func (c NodeConfig) passwordHash() auth.Params {
	if c.PasswordHash == (auth.Params{}) {
		return auth.DefaultParams
	}
	return c.PasswordHash
}

// Node is a real node (server.New and Run, HTTP over loopback TCP) in
// this process.
type Node struct {
	Server   *server.Server
	URL      string
	Admin    *Client
	Provider provider.Provider
	// StoreInfo describes the store for a report.
	StoreInfo string

	cancel  context.CancelFunc
	done    chan error
	cleanup []func()
}

// StartNode starts a node and signs its administrator in.
func StartNode(ctx context.Context, cfg NodeConfig) (_ *Node, err error) {
	n := &Node{}
	defer func() {
		if err != nil {
			n.Close()
		}
	}()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	dir, err := os.MkdirTemp(cfg.DataDir, "lobby-bench-")
	if err != nil {
		return nil, fmt.Errorf("bench node: %w", err)
	}
	n.cleanup = append(n.cleanup, func() { os.RemoveAll(dir) })
	if cfg.Provider == nil {
		if cfg.Provider, err = memory.New(memory.Config{}); err != nil {
			return nil, err
		}
	}
	n.Provider = cfg.Provider
	pw := auth.RandomPassword()
	scfg := server.Config{
		Listen: "127.0.0.1:0", DataDir: dir, PlainHTTP: true, AdminPassword: pw,
		LocalAgent: true, Provider: cfg.Provider, HashSlots: cfg.HashSlots, PasswordHash: cfg.passwordHash(), Logger: cfg.Logger, Version: "bench",
	}
	n.StoreInfo = "SQLite (WAL, synchronous=NORMAL) in " + dir
	switch cfg.Store {
	case "", "sqlite":
	case "postgres":
		scfg.ClusterKey = pki.NewClusterKeyString() // a node on PostgreSQL needs one
		if scfg.Postgres, n.StoreInfo, err = n.postgres(ctx, cfg.Postgres, cfg.DataDir); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("--store %q is not valid: use sqlite or postgres", cfg.Store)
	}
	srv, err := server.New(ctx, scfg)
	if err != nil {
		return nil, fmt.Errorf("bench node: %w", err)
	}
	n.Server, n.URL = srv, srv.URL()
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	n.cancel, n.done = cancel, make(chan error, 1)
	go func() { n.done <- srv.Run(rctx) }()

	tokens, err := n.IssueTokens(ctx, []string{"admin"})
	if err != nil {
		return nil, err
	}
	n.Admin = &Client{HTTP: NewHTTPClient(4), Base: n.URL, Token: tokens[0]}
	return n, nil
}

// IssueTokens signs users in without their passwords: each token comes
// from auth.Service.IssueToken, the call POST /api/v1/login makes once the
// password is verified. It saves one argon2id hash per user of setup, for
// harnesses that do not measure signing in.
func (n *Node) IssueTokens(ctx context.Context, names []string) ([]string, error) {
	tokens := make([]string, len(names))
	for i, name := range names {
		u, _, err := n.Server.Store.GetUserByName(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("sign in %s: %w", name, err)
		}
		if tokens[i], _, err = n.Server.Auth.IssueToken(ctx, u.ID, "bench", 2*time.Hour); err != nil {
			return nil, fmt.Errorf("sign in %s: %w", name, err)
		}
	}
	return tokens, nil
}

// postgres returns the URL of a fresh schema for the node: in url, in
// TEST_DATABASE_URL, or in a throwaway server started under parent.
func (n *Node) postgres(ctx context.Context, url, parent string) (string, string, error) {
	url, stop, err := pgServer(ctx, url, parent)
	if err != nil {
		return "", "", err
	}
	n.cleanup = append(n.cleanup, stop)
	u, info, drop, err := pgSchema(ctx, url)
	if err != nil {
		return "", "", err
	}
	n.cleanup = append(n.cleanup, drop)
	return u, info, nil
}

// pgServer returns url, else TEST_DATABASE_URL, else the URL of a
// throwaway PostgreSQL started under parent; stop stops what it started.
func pgServer(ctx context.Context, url, parent string) (_ string, stop func(), err error) {
	if url == "" {
		url = os.Getenv(pgtest.EnvURL)
	}
	if url != "" {
		return url, func() {}, nil
	}
	dir, err := os.MkdirTemp(parent, "lobby-bench-pg-")
	if err != nil {
		return "", nil, err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	srv, err := pgtest.Start(ctx, dir)
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("start PostgreSQL for the benchmark (or give --postgres URL): %w", err)
	}
	return srv.URL(), func() { srv.Stop(); os.RemoveAll(dir) }, nil
}

// pgSchema makes a fresh schema in the server at url and returns its URL
// (search_path set), a description of the server for a report, and drop,
// which drops the schema.
func pgSchema(ctx context.Context, url string) (_, info string, drop func(), err error) {
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "bench_" + hex.EncodeToString(b[:])
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return "", "", nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer conn.Close(ctx)
	var version, fsync, syncCommit string
	err = conn.QueryRow(ctx, "SELECT current_setting('server_version'), current_setting('fsync'), current_setting('synchronous_commit')").Scan(&version, &fsync, &syncCommit)
	if err != nil {
		return "", "", nil, fmt.Errorf("PostgreSQL settings: %w", err)
	}
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		return "", "", nil, fmt.Errorf("create schema: %w", err)
	}
	drop = func() {
		ctx := context.Background()
		if c, err := pgx.Connect(ctx, url); err == nil {
			_, _ = c.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE")
			c.Close(ctx)
		}
	}
	u, err := pgtest.WithSearchPath(url, schema)
	if err != nil {
		drop()
		return "", "", nil, err
	}
	info = fmt.Sprintf("PostgreSQL %s on loopback (fsync=%s, synchronous_commit=%s), schema %s", version, fsync, syncCommit, schema)
	return u, info, drop, nil
}

// Close stops the node and removes its data.
func (n *Node) Close() error {
	var err error
	if n.cancel != nil {
		n.cancel()
		err = <-n.done
	}
	if n.Server != nil {
		err = errors.Join(err, n.Server.Close())
	}
	for i := len(n.cleanup) - 1; i >= 0; i-- {
		n.cleanup[i]()
	}
	n.cleanup = nil
	return err
}
