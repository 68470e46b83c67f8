// Package server assembles a Lobby node: the store, authentication, the
// work queue, the assignment engine, the gateway, the API and, when asked,
// an in-process host agent. It is the one place that imports everything.
package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"lobby/internal/api"
	"lobby/internal/assign"
	"lobby/internal/auth"
	"lobby/internal/cluster"
	"lobby/internal/datadir"
	"lobby/internal/gateway"
	"lobby/internal/health"
	"lobby/internal/hostconn"
	"lobby/internal/jobs"
	"lobby/internal/link"
	"lobby/internal/linkproto"
	"lobby/internal/lobby"
	"lobby/internal/manage"
	"lobby/internal/pki"
	"lobby/internal/provider"
	"lobby/internal/store"
	"lobby/internal/store/postgres"
	"lobby/internal/store/sqlite"
	"lobby/internal/store/sqlstore"
	"lobby/internal/web"
)

// Config configures a node. Zero values take the documented defaults.
type Config struct {
	Listen   string // address of the web and API listener; default 127.0.0.1:8443 (8080 with PlainHTTP)
	DataDir  string // the node's own files; the SQLite database when Postgres is empty
	Postgres string // PostgreSQL URL; empty means embedded SQLite in DataDir
	SiteID   int    // unique per node; default 1
	Name     string // this node's name on links (hub name masks match it); default the hostname
	// Advertise is the URL other nodes reach this node at (node links
	// dial it; the node list shows it); default the scheme and the bound
	// listen address, with Name for an unspecified host (0.0.0.0).
	Advertise string
	// ClusterKey seals the cluster CA's key in the store
	// (LOBBY_CLUSTER_KEY). Required with Postgres; a standalone node
	// keeps its own in DataDir when empty.
	ClusterKey string
	PlainHTTP  bool   // serve HTTP instead of HTTPS (lobby dev, or behind a TLS-terminating balancer)
	TLSCert    string // operator's certificate; empty makes a self-signed one in DataDir
	TLSKey     string

	// AdminPassword is the first administrator's password when the store
	// has none (LOBBY_ADMIN_PASSWORD); empty generates one.
	AdminPassword string

	// NoMigrate leaves an older schema as it is: the node then runs in
	// maintenance mode until `lobby admin db migrate`.
	NoMigrate bool

	// LocalAgent runs an in-process host agent for desktops on this machine.
	LocalAgent  bool
	DesktopUser string // run every local desktop as this user; empty creates one system user per desktop
	// Provider replaces the local agent's Xvnc provider (benchmarks and
	// tests use provider/memory); nil means local desktops in DataDir.
	Provider provider.Provider

	// Demo, when positive, creates on first start a pool "demo" of that
	// many desktops and a policy offering it to everyone.
	Demo int

	// MaxClockSkew is the health check's limit on a node's clock against
	// the database's (default 60 s); WatchdogStore and WatchdogLoop are
	// how long the store may go silent and a loop stall before /readyz
	// answers 503 (5 s and 10 s).
	MaxClockSkew, WatchdogStore, WatchdogLoop time.Duration

	// JobTakeover is how long another node's heartbeat must stand still
	// before this node, leading, takes its jobs over; zero takes the
	// default (jobs.DefaultTakeoverAfter), negative never.
	JobTakeover time.Duration

	HashSlots    int         // concurrent password hashes; default one per CPU
	PasswordHash auth.Params // argon2id settings of new password hashes; default auth.DefaultParams
	Version      string
	Logger       *slog.Logger
}

func (c *Config) validate() error {
	if c.DataDir == "" {
		return errors.New("--data is required: the directory for the node's own files")
	}
	if c.SiteID == 0 {
		c.SiteID = 1
	}
	if c.SiteID < 1 || c.SiteID > 65535 {
		return fmt.Errorf("--site-id %d is not valid: give a number from 1 to 65535", c.SiteID)
	}
	if c.Listen == "" {
		c.Listen = "127.0.0.1:8443"
		if c.PlainHTTP {
			c.Listen = "127.0.0.1:8080"
		}
	}
	if c.Name == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			return errors.New("this machine's hostname is unknown: give the node a --name")
		}
		c.Name = strings.ToLower(h)
	}
	if err := lobby.ValidName("node", c.Name); err != nil {
		return fmt.Errorf("%s: give the node another --name", lobby.ErrorMessage(err))
	}
	if c.Advertise != "" {
		if _, err := link.LinkURL(c.Advertise); err != nil {
			return fmt.Errorf("--advertise: %w", err)
		}
	}
	if c.Postgres != "" && c.ClusterKey == "" {
		return errors.New("LOBBY_CLUSTER_KEY is not set: every node on a shared PostgreSQL needs the same cluster key (it seals the cluster's certificate authority); make one with `lobby admin cluster-key` and give it to every node")
	}
	if err := c.validateHealth(); err != nil {
		return err
	}
	if c.Demo < 0 || c.Demo > 100 {
		return fmt.Errorf("--desktops %d is not valid: give 0 to 100", c.Demo)
	}
	if c.PasswordHash == (auth.Params{}) {
		c.PasswordHash = auth.DefaultParams
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Version == "" {
		c.Version = "dev"
	}
	return nil
}

// Server is a running node.
type Server struct {
	cfg     Config
	log     *slog.Logger
	Store   store.Store
	Auth    *auth.Service
	Queue   *jobs.Queue
	Hosts   *hostconn.Registry
	Assign  *assign.Service
	Manager *assign.Manager
	Gateway *gateway.Gateway
	// Member is this node's row and lease in the cluster.
	Member *cluster.Member
	// Hub accepts agents' links; CA is the cluster's authority.
	Hub       *link.Hub
	CA        *pki.CA
	Bootstrap auth.Bootstrap
	// Throttle limits failed sign-ins on this node (pages and API).
	Throttle *auth.Throttle
	// CertFingerprint is the SHA-256 of the HTTPS certificate; NewCert
	// says it was made on this start.
	CertFingerprint string
	NewCert         bool
	// Watchdog judges this node's own health for /readyz; Health is the
	// cluster's health check, run from this node.
	Watchdog *health.Watchdog
	Health   *health.Checker

	monitor        *health.Monitor
	prober         *health.Prober
	webCertExpires time.Time

	listener net.Listener
	http     *http.Server
	agent    *localAgent

	closeOnce sync.Once
	closers   []func() error
}

// New opens the store (running migrations), makes the first
// administrator if needed, and binds the listener. Run serves.
func New(ctx context.Context, cfg Config) (_ *Server, err error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger, Hosts: hostconn.NewRegistry(), Throttle: auth.NewThrottle()}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if err := ensureWritable(cfg.DataDir); err != nil {
		return nil, err
	}
	// One process per data directory: `lobby admin db` commands wait
	// for the node to stop, and two nodes never share one SQLite file.
	lock, err := datadir.Acquire(cfg.DataDir, "a Lobby node")
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, lock.Release)
	if err := s.openStore(ctx); err != nil {
		return nil, err
	}
	s.Auth, err = auth.New(ctx, s.Store, auth.NewHasher(cfg.PasswordHash, cfg.HashSlots), s.log)
	if err != nil {
		return nil, err
	}
	if s.Bootstrap, err = s.Auth.EnsureAdmin(ctx, cfg.AdminPassword); err != nil {
		return nil, err
	}
	if err := s.openHub(ctx); err != nil {
		return nil, err
	}
	// Bound before joining, so that the node list has the real address
	// (the port of --listen :0 is known only now).
	if err := s.bind(); err != nil {
		return nil, err
	}
	if err := s.joinCluster(ctx); err != nil {
		return nil, err
	}
	if err := s.initHealth(); err != nil {
		return nil, err
	}
	if s.Queue, err = jobs.New(jobs.Config{Store: s.Store, Hosts: s.Hosts, SiteID: cfg.SiteID, Logger: s.log,
		Instance: s.Member.Instance(), Leader: s.Member.Leader, Fenced: s.Member.Lost, TakeoverAfter: cfg.JobTakeover}); err != nil {
		return nil, err
	}
	s.Gateway = &gateway.Gateway{Tickets: s.Auth, Store: s.Store, Hosts: s.Hosts, Logger: s.log, Now: time.Now}
	s.Assign = &assign.Service{Store: s.Store, Queue: s.Queue, Sessions: s.Gateway, Logger: s.log, Now: time.Now}
	s.Manager = assign.NewManager(s.Assign, s.Hub.Placeable)
	s.Manager.Leader = s.Member.Leader
	s.Assign.Kick = s.Manager.Kick
	if cfg.LocalAgent {
		if s.agent, err = startLocalAgent(ctx, s, filepath.Join(cfg.DataDir, "desktops")); err != nil {
			return nil, err
		}
	}
	if cfg.Demo > 0 {
		if err := s.ensureDemo(ctx, cfg.Demo); err != nil {
			return nil, err
		}
	}
	if err := s.listen(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Server) openStore(ctx context.Context) error {
	if s.cfg.Postgres != "" {
		db, err := postgres.OpenWith(ctx, s.cfg.Postgres, postgres.Options{Logger: s.log, NoMigrate: s.cfg.NoMigrate})
		if err != nil {
			return err
		}
		s.Store = db
	} else {
		db, err := sqlite.OpenWith(ctx, filepath.Join(s.cfg.DataDir, datadir.SQLiteFile), sqlite.Options{Logger: s.log, NoMigrate: s.cfg.NoMigrate})
		if err != nil {
			return err
		}
		s.Store = db
	}
	s.closers = append(s.closers, s.Store.Close)
	if s.cfg.NoMigrate {
		sch, err := s.Store.Schema(ctx)
		if err != nil {
			return err
		}
		return sqlstore.CheckNoMigrate(sch)
	}
	return nil
}

// openHub loads (or, on the cluster's first start, makes) the cluster CA
// and issues this node's link certificate, so that it can admit agents.
func (s *Server) openHub(ctx context.Context) error {
	var key pki.ClusterKey
	var err error
	if s.cfg.ClusterKey != "" {
		key, err = pki.ParseClusterKey(s.cfg.ClusterKey)
		if err != nil {
			return fmt.Errorf("LOBBY_CLUSTER_KEY: %w", err)
		}
	} else if key, err = pki.StandaloneKey(s.cfg.DataDir); err != nil {
		return err
	}
	now := time.Now()
	if s.CA, err = pki.LoadOrCreateCA(ctx, s.Store, key, now); err != nil {
		return err
	}
	cert, err := s.CA.IssueTLS(pki.Identity{Kind: pki.KindNode, ID: strconv.Itoa(s.cfg.SiteID), Name: s.cfg.Name}, now, pki.NodeLifetime)
	if err != nil {
		return err
	}
	s.Hub = &link.Hub{Store: s.Store, CA: s.CA, Cert: cert, Name: s.cfg.Name, SiteID: s.cfg.SiteID,
		Hosts: s.Hosts, Release: s.cfg.Version, Logger: s.log.With("component", "link"), Now: time.Now,
		NodeStale: cluster.DefaultStaleAfter}
	// Hosts linked to other nodes are reached over the node links.
	s.Hosts.SetRouter(s.Hub)
	if err := s.markLinksDown(ctx, now); err != nil {
		// On a schema this node does not serve (maintenance mode), its
		// queries may not fit: the hosts link again anyway.
		if sch, serr := s.Store.Schema(ctx); serr == nil && sch.Maintenance(sqlstore.SchemaVersion) != "" {
			s.log.Warn("mark this node's hosts down: skipped on a schema this node does not serve", "err", err)
			return nil
		}
		return err
	}
	return nil
}

// joinCluster registers this node under its site ID (refused while a live
// node holds it), with the schema version its binary knows, and takes
// part in the singleton lease. The member watches the database's schema:
// while this binary may not serve it, the node is in maintenance mode,
// where only administrators sign in.
func (s *Server) joinCluster(ctx context.Context) error {
	var err error
	s.Member, err = cluster.Join(ctx, cluster.Config{Store: s.Store, Logger: s.log, Node: lobby.Node{
		SiteID: s.cfg.SiteID, Name: s.cfg.Name, Address: s.advertise(), Version: s.cfg.Version, SchemaVersion: sqlstore.SchemaVersion}})
	if err != nil {
		return err
	}
	s.Auth.Maintenance = s.Member.Maintenance
	return nil
}

// ready tells the load balancer whether to send this node people: not
// while its watchdog finds it unhealthy (the store silent, a loop stuck),
// the node is drained or in maintenance mode (where it would turn them
// away: other nodes may serve them), or another process took its site ID
// over.
func (s *Server) ready(ctx context.Context) error {
	if err := s.Watchdog.Check(); err != nil {
		return err
	}
	switch {
	case s.Member.Lost():
		return errors.New("another process took this node's site ID over: restart this node")
	case s.Member.Mode() == lobby.NodeDraining:
		return errors.New("this node is draining: it finishes what it has and takes nothing new")
	case s.Member.Mode() == lobby.NodeMaintenance:
		return fmt.Errorf("this node is in maintenance mode: %s", s.Member.Maintenance())
	}
	return nil
}

// markLinksDown records as down the hosts whose links this node held
// when it stopped (or died): they are up again when they link back.
func (s *Server) markLinksDown(ctx context.Context, now time.Time) error {
	opt := store.ListOptions{Limit: store.MaxLimit}
	for {
		hs, err := s.Store.ListHosts(ctx, opt)
		if err != nil {
			return fmt.Errorf("list hosts: %w", err)
		}
		for _, h := range hs {
			if h.SiteID == s.cfg.SiteID && h.State == lobby.HostUp && h.CertSerial != "" {
				if _, err := s.Store.SetHostDown(ctx, h.ID, h.SiteID, h.LastSeen); err != nil && !errors.Is(err, store.ErrNotFound) {
					return fmt.Errorf("mark host %s down: %w", h.Name, err)
				}
			}
		}
		if len(hs) < opt.Limit {
			return nil
		}
		opt.After = hs[len(hs)-1].ID
	}
}

// ensureWritable makes dir and checks that files can be created in it.
func ensureWritable(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("data directory %s cannot be created: %w; choose another with --data", dir, err)
	}
	f, err := os.CreateTemp(dir, ".write-test-*")
	if err != nil {
		return fmt.Errorf("data directory %s is not writable: %w; choose another with --data or fix its permissions", dir, err)
	}
	f.Close()
	return os.Remove(f.Name())
}

// bind opens the listener (with TLS unless PlainHTTP).
func (s *Server) bind() error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w; choose another address with --listen", s.cfg.Listen, err)
	}
	if !s.cfg.PlainHTTP {
		cert, created, err := loadOrCreateCert(s.cfg.TLSCert, s.cfg.TLSKey, s.cfg.DataDir, certHosts(s.cfg.Listen))
		if err != nil {
			ln.Close()
			return err
		}
		s.CertFingerprint, s.NewCert = Fingerprint(cert), created
		if leaf, err := x509.ParseCertificate(cert.Certificate[0]); err == nil {
			s.webCertExpires = leaf.NotAfter
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}})
	}
	s.listener = ln
	return nil
}

// advertise is the URL other nodes reach this node at.
func (s *Server) advertise() string {
	if s.cfg.Advertise != "" {
		return s.cfg.Advertise
	}
	host, port, err := net.SplitHostPort(s.listener.Addr().String())
	if err != nil {
		return s.URL()
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = s.cfg.Name
	}
	return s.scheme() + "://" + net.JoinHostPort(host, port)
}

// listen builds the handlers of the listener bind opened.
func (s *Server) listen() error {
	// One administrative service for the API and the pages.
	m := &manage.Service{Store: s.Store, Hasher: s.Auth.Hasher, Assign: s.Assign, Queue: s.Queue, Now: s.Auth.Now,
		CAFingerprint: s.CA.Fingerprint(), Hub: s.Hub}
	m.Checker = s.Health
	a := &api.Server{Store: s.Store, Auth: s.Auth, Throttle: s.Throttle, Assign: s.Assign, Queue: s.Queue, Manage: m, Gateway: s.Gateway, Version: s.cfg.Version, Logger: s.log, Ready: s.ready, Ping: s.ping}
	apiHandler := a.Handler()
	db := store.SQLite
	if s.cfg.Postgres != "" {
		db = store.Postgres
	}
	pages := &web.Server{
		Store: s.Store, Auth: s.Auth, Assign: s.Assign, Queue: s.Queue, Hosts: s.Hosts,
		Manage:   m,
		Throttle: s.Throttle, Version: s.cfg.Version, Logger: s.log, Maintenance: s.Member.Maintenance,
		Node: web.NodeInfo{SiteID: s.cfg.SiteID, Database: db, DataDir: s.cfg.DataDir, Listen: s.cfg.Listen, TLS: !s.cfg.PlainHTTP},
	}
	// The API (with the gateway and the probes) and the pages share one
	// listener; everything not the API's is a page.
	mux := http.NewServeMux()
	for _, prefix := range []string{"/api/", "/gateway/", "/version", "/healthz", "/readyz", "/metrics"} {
		mux.Handle(prefix, apiHandler)
	}
	mux.Handle(linkproto.Path, s.Hub)
	mux.Handle("/", pages.Handler())
	s.http = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	return nil
}

// Config is the node's configuration with defaults filled.
func (s *Server) Config() Config { return s.cfg }

// URL is where the node serves, e.g. https://127.0.0.1:8443.
func (s *Server) URL() string {
	return s.scheme() + "://" + s.listener.Addr().String()
}

func (s *Server) scheme() string {
	if s.cfg.PlainHTTP {
		return "http"
	}
	return "https"
}

// gatewayFence is how often a clustered node checks that its console
// viewers' desktops are still theirs.
const gatewayFence = time.Second

// Run serves until ctx ends, then shuts down gracefully.
func (s *Server) Run(ctx context.Context) error {
	queued := s.Member.Mode() != lobby.NodeMaintenance
	if queued {
		if err := s.Queue.Start(ctx); err != nil {
			return fmt.Errorf("start work queue: %w", err)
		}
	}
	bg, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { s.Manager.Run(bg) })
	wg.Go(func() { s.Member.Run(bg) })
	wg.Go(func() { s.followMode(ctx, bg, queued) })
	wg.Go(func() { s.Hub.RunPeers(bg) })
	if s.cfg.Postgres != "" {
		// Releases made on other nodes end this node's viewers too.
		wg.Go(func() { s.Gateway.Fence(bg, gatewayFence) })
	}
	wg.Go(func() { s.Watchdog.Run(bg) })
	wg.Go(func() { s.monitor.Run(bg) })
	if s.agent != nil {
		wg.Go(func() { s.agent.run(bg) })
	}
	errc := make(chan error, 1)
	go func() { errc <- s.http.Serve(s.listener) }()
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	_ = s.http.Shutdown(sctx)
	s.Hub.Close() // links are upgraded connections, which Shutdown leaves open
	cancel()
	wg.Wait()
	if qerr := s.Queue.Stop(sctx); qerr != nil && err == nil {
		s.log.Warn("stop work queue", "err", qerr)
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// followMode runs the work queue only while the node is out of
// maintenance mode: in it, this binary's code may not fit the database's
// schema, so it takes no jobs (other nodes do); it takes them again when
// it leaves it. Jobs run under queueCtx; it returns when ctx ends.
func (s *Server) followMode(queueCtx, ctx context.Context, running bool) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		switch want := s.Member.Mode() != lobby.NodeMaintenance; {
		case want && !running:
			if err := s.Queue.Start(queueCtx); err != nil {
				s.log.Warn("start the work queue after maintenance mode", "err", err)
				continue
			}
			s.log.Info("the work queue runs again")
		case !want && running:
			sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			err := s.Queue.Stop(sctx)
			cancel()
			if err != nil {
				s.log.Warn("stop the work queue for maintenance mode", "err", err)
				continue
			}
			s.log.Info("the work queue is stopped until this node leaves maintenance mode")
		default:
			continue
		}
		running = !running
	}
}

// Close releases the store and the agent. Running desktops keep running.
func (s *Server) Close() error {
	var errs []error
	s.closeOnce.Do(func() {
		if s.listener != nil {
			s.listener.Close()
		}
		if s.Hub != nil {
			s.Hub.Close()
		}
		if s.agent != nil {
			errs = append(errs, s.agent.close())
		}
		if s.Member != nil {
			s.Member.Leave()
		}
		for i := len(s.closers) - 1; i >= 0; i-- {
			errs = append(errs, s.closers[i]())
		}
	})
	return errors.Join(errs...)
}
