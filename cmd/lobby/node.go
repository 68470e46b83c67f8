package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"time"

	"lobby/internal/auth"
	"lobby/internal/datadir"
	"lobby/internal/jobs"
	"lobby/internal/link"
	"lobby/internal/server"
)

var errHelp = errors.New("help requested")

// Main runs a node the way the binary does, so tests use the real wiring:
// ParseFlags, then Run (which returns once the node serves), then Close.
type Main struct {
	Stdout, Stderr io.Writer
	Getenv         func(string) string

	Config server.Config
	dev    bool
	srv    *server.Server
	cancel context.CancelFunc
	done   chan error
}

// ParseFlags reads flags, the environment and the config file.
func (m *Main) ParseFlags(cmd string, args []string) error {
	m.dev = cmd == "dev"
	c := &m.Config
	fs := flag.NewFlagSet("lobby "+cmd, flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	cfgFile := fs.String("config", "", "YAML file of options (keys are the flag names)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	c.PasswordHash = auth.DefaultParams
	fs.Var(&c.PasswordHash, "password-hash", "argon2id settings of new password hashes, m=KiB,t=passes,p=lanes (OWASP's or stronger; existing hashes keep theirs)")
	fs.StringVar(&c.DesktopUser, "desktop-user", "", "run local desktops as this existing unprivileged user (default: one system user per desktop)")
	if m.dev {
		fs.StringVar(&c.DataDir, "data", "./lobby-data", "directory for the database, keys and desktops")
		fs.StringVar(&c.Listen, "listen", "127.0.0.1:8080", "address to serve plain HTTP on (loopback only)")
		fs.IntVar(&c.Demo, "desktops", 3, "size of the demo pool created on first start")
	} else {
		fs.StringVar(&c.DataDir, "data", "/var/lib/lobby", "directory for the node's own files (and the SQLite database without --postgres)")
		fs.StringVar(&c.Listen, "listen", "", "address to serve on (default 127.0.0.1:8443, or :8080 with --plain-http)")
		fs.StringVar(&c.Postgres, "postgres", "", "PostgreSQL URL; empty uses the embedded SQLite database")
		fs.IntVar(&c.SiteID, "site-id", 1, "this node's unique site ID (1-65535)")
		fs.StringVar(&c.Name, "name", "", "this node's name on links, which agents' name masks match (default: the hostname)")
		fs.StringVar(&c.Advertise, "advertise", "", "URL the other nodes reach this node at, for node links (default: from --listen, with --name for 0.0.0.0)")
		fs.BoolVar(&c.LocalAgent, "local-agent", false, "run an in-process agent for desktops on this machine")
		fs.StringVar(&c.TLSCert, "tls-cert", "", "TLS certificate file (PEM); default: a self-signed certificate in --data")
		fs.StringVar(&c.TLSKey, "tls-key", "", "TLS private key file (PEM)")
		fs.BoolVar(&c.PlainHTTP, "plain-http", false, "serve plain HTTP (only behind a TLS-terminating load balancer)")
		fs.BoolVar(&c.NoMigrate, "no-migrate", false, "do not migrate an older database schema: run in maintenance mode (administrators only) until `lobby admin db migrate`")
		healthFlags(fs, c)
		fs.DurationVar(&c.JobTakeover, "job-takeover", jobs.DefaultTakeoverAfter, "take a node's jobs over once its heartbeat stood still this long; 0 never (operators reassign them)")
	}
	if err := parseFlags(fs, args, cfgFile, m.Getenv); err != nil {
		return err
	}
	recorded, err := recordedDatabase(fs, c, m.dev)
	if err != nil {
		return err
	}
	if !m.dev && (c.SiteID < 1 || c.SiteID > 65535) {
		return fmt.Errorf("--site-id %d is not valid: give this node's unique number from 1 to 65535", c.SiteID)
	}
	if _, err := link.LinkURL(c.Advertise); c.Advertise != "" && err != nil {
		return fmt.Errorf("--advertise: %w", err)
	}
	switch {
	case m.dev:
	case c.JobTakeover < 0:
		return fmt.Errorf("--job-takeover %s is not valid: give a duration such as 3s, or 0 to leave a dead node's jobs to an operator", c.JobTakeover)
	case c.JobTakeover == 0:
		c.JobTakeover = -1 // never
	}
	log, err := newLogger(m.Stderr, *logLevel)
	if err != nil {
		return err
	}
	c.Logger, c.Version = log, version
	if recorded != "" {
		log.Info(recorded)
	}
	c.AdminPassword = m.Getenv("LOBBY_ADMIN_PASSWORD")
	c.ClusterKey = m.Getenv("LOBBY_CLUSTER_KEY")
	if m.dev {
		c.PlainHTTP, c.LocalAgent = true, true
		if err := loopbackOnly(c.Listen); err != nil {
			return err
		}
	}
	return nil
}

// recordedDatabase applies the database that `lobby admin db switch`
// recorded in the data directory, unless --postgres (flag, environment or
// config file) is given, which wins; it returns what to log.
func recordedDatabase(fs *flag.FlagSet, c *server.Config, dev bool) (string, error) {
	choice, ok, err := datadir.ReadChoice(c.DataDir)
	if err != nil || !ok {
		return "", err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	file := filepath.Join(c.DataDir, datadir.ChoiceFile)
	switch {
	case set["postgres"] && c.Postgres != choice.Postgres:
		return fmt.Sprintf("--postgres (or LOBBY_POSTGRES) wins over the %s database recorded in %s", choice.Database, file), nil
	case choice.Database == datadir.Embedded:
		return "", nil
	case dev:
		return "", fmt.Errorf("%s moved this node to PostgreSQL, and lobby dev runs on the embedded database only: run it with `lobby server --data %s`, or move it back with `lobby admin db switch --data %s --embedded`", file, c.DataDir, c.DataDir)
	}
	c.Postgres = choice.Postgres
	if !set["site-id"] {
		c.SiteID = choice.SiteID
	}
	return fmt.Sprintf("database: PostgreSQL, site ID %d, as recorded in %s by `lobby admin db switch`", c.SiteID, file), nil
}

// loopbackOnly refuses to serve plain HTTP beyond this machine.
func loopbackOnly(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--listen %q is not host:port: %v", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("--listen %s: lobby dev serves plain HTTP, so only on loopback (127.0.0.1); for a real deployment use `lobby server`", addr)
	}
	return nil
}

// Run starts the node and returns once it serves.
func (m *Main) Run(ctx context.Context) error {
	srv, err := server.New(ctx, m.Config)
	if err != nil {
		return err
	}
	m.srv = srv
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	m.cancel, m.done = cancel, make(chan error, 1)
	go func() { m.done <- srv.Run(rctx) }()
	m.banner()
	return nil
}

// URL is where the node serves.
func (m *Main) URL() string { return m.srv.URL() }

func (m *Main) banner() {
	w, s, c := m.Stdout, m.srv, m.srv.Config()
	what := "Lobby node"
	if m.dev {
		what = "Lobby (dev, standalone)"
	}
	fmt.Fprintf(w, "%s is running.\n", what)
	fmt.Fprintf(w, "  URL:         %s   (open it in a browser and sign in)\n", s.URL())
	switch b := s.Bootstrap; {
	case b.Created && b.Password != "":
		fmt.Fprintf(w, "  Admin:       admin / %s\n", b.Password)
		fmt.Fprintf(w, "               (shown only now: keep it; change it with `lobby users passwd admin`)\n")
	case b.Created:
		fmt.Fprintf(w, "  Admin:       admin, with the password from LOBBY_ADMIN_PASSWORD\n")
	case b.EnvIgnore:
		fmt.Fprintf(w, "  Admin:       LOBBY_ADMIN_PASSWORD is ignored: an administrator already exists\n")
	default:
		fmt.Fprintf(w, "  Admin:       exists already (its password was printed on the first start)\n")
	}
	if s.CertFingerprint != "" {
		note := ""
		if s.NewCert {
			note = " (new self-signed certificate)"
		}
		fmt.Fprintf(w, "  Certificate: SHA-256 %s%s\n", s.CertFingerprint, note)
	}
	store := "SQLite in " + c.DataDir
	if c.Postgres != "" {
		store = "PostgreSQL"
	}
	fmt.Fprintf(w, "  Store:       %s, site ID %d\n", store, c.SiteID)
	if why := s.Member.Maintenance(); why != "" {
		fmt.Fprintf(w, "  Maintenance: %s\n", why)
		fmt.Fprintf(w, "               (only administrators can sign in until then)\n")
	}
	if m.dev {
		fmt.Fprintf(w, "  Demo:        pool \"demo\" (%d desktops, starting in the background)\n", c.Demo)
		fmt.Fprintf(w, "  Or:          lobby login --server %s --user admin && lobby connect demo\n", s.URL())
	}
}

// Close stops the node; running desktops keep running. It may be called
// more than once.
func (m *Main) Close() error {
	if m.srv == nil {
		return nil
	}
	defer func() { m.srv = nil }()
	m.cancel()
	var err error
	select {
	case err = <-m.done:
	case <-time.After(30 * time.Second):
		err = errors.New("the node did not stop within 30 s")
	}
	return errors.Join(err, m.srv.Close())
}
