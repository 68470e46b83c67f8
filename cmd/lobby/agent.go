package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"lobby/internal/agent"
	"lobby/internal/linkproto"
	"lobby/internal/provider"
	"lobby/internal/provider/local"
)

// AgentMain runs a host agent the way the binary does: ParseFlags, Run
// (which joins when asked and returns once the agent is linking), Wait,
// Close.
type AgentMain struct {
	Stdout, Stderr io.Writer
	Getenv         func(string) string

	Config      agent.Config
	Join        string
	desktopUser string
	hubs        hubList
	provider    provider.Provider
	agent       *agent.Agent
	cancel      context.CancelFunc
	done        chan error
}

// hubList is the repeatable --hub flag. Each value is one or more hubs
// separated by spaces (so LOBBY_HUB can list several), each a URL with
// optional settings after commas: URL[,mask=PATTERN][,ping=DURATION]
// [,auto=on|off][,secure-only].
type hubList []linkproto.HubSetting

func (h *hubList) String() string {
	var urls []string
	for _, s := range *h {
		urls = append(urls, s.URL)
	}
	return strings.Join(urls, " ")
}

func (h *hubList) Set(v string) error {
	for _, spec := range strings.Fields(v) {
		s, err := parseHub(spec)
		if err != nil {
			return err
		}
		*h = append(*h, s)
	}
	return nil
}

func parseHub(spec string) (linkproto.HubSetting, error) {
	parts := strings.Split(spec, ",")
	s := linkproto.HubSetting{URL: parts[0], AutoConnect: true}
	for _, p := range parts[1:] {
		k, v, _ := strings.Cut(p, "=")
		switch k {
		case "mask":
			s.NameMask = v
		case "ping":
			d, err := time.ParseDuration(v)
			if err != nil {
				return s, fmt.Errorf("hub %s: ping=%q is not a duration like 1s", parts[0], v)
			}
			s.Ping = linkproto.Duration(d)
		case "auto":
			switch v {
			case "on", "true", "":
				s.AutoConnect = true
			case "off", "false":
				s.AutoConnect = false
			default:
				return s, fmt.Errorf("hub %s: auto=%q: use on or off", parts[0], v)
			}
		case "secure-only":
			s.SecureOnly = v == "" || v == "on" || v == "true"
		default:
			return s, fmt.Errorf("hub %s: unknown setting %q: use mask=, ping=, auto=on|off or secure-only", parts[0], k)
		}
	}
	return s, nil
}

// ParseFlags reads flags, the environment and the config file.
func (m *AgentMain) ParseFlags(args []string) error {
	c := &m.Config
	fs := flag.NewFlagSet("lobby agent", flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	fs.Usage = func() {
		fmt.Fprintln(m.Stderr, "Usage: lobby agent --join TOKEN --hub URL [--hub URL ...] --data DIR\n\n"+
			"Runs this host's agent: it links outbound to one hub at a time (the next one\n"+
			"when its hub goes away) and runs desktops for the cluster. --join is needed\n"+
			"only the first time. A hub is URL[,mask=PATTERN][,ping=1s][,auto=on|off][,secure-only].\n\nOptions:")
		fs.PrintDefaults()
	}
	cfgFile := fs.String("config", "", "YAML file of options (keys are the flag names)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.DataDir, "data", "/var/lib/lobby-agent", "directory for this host's identity and desktops")
	fs.StringVar(&c.Name, "name", "", "this host's name (default: the hostname)")
	fs.StringVar(&m.Join, "join", "", "join token from `lobby admin token create` (first start only)")
	fs.Var(&m.hubs, "hub", "upstream hub, in order of preference (repeat for more)")
	mask := fs.String("name-mask", "", "accept only hubs whose name matches, e.g. hub1.*.example.com (for hubs without their own mask)")
	ping := fs.Duration("ping", agent.DefaultPing, "ping interval (for hubs without their own)")
	secure := fs.Bool("secure-only", false, "refuse hubs given as plain http:// URLs")
	fs.StringVar(&m.desktopUser, "desktop-user", "", "run desktops as this existing unprivileged user (default: one system user per desktop)")
	if err := parseFlags(fs, args, cfgFile, m.Getenv); err != nil {
		return err
	}
	for _, h := range m.hubs {
		if h.NameMask == "" {
			h.NameMask = *mask
		}
		if h.Ping == 0 {
			h.Ping = linkproto.Duration(*ping)
		}
		h.SecureOnly = h.SecureOnly || *secure
		c.Hubs = append(c.Hubs, h)
	}
	log, err := newLogger(m.Stderr, *logLevel)
	if err != nil {
		return err
	}
	c.Logger, c.Release = log, version
	return nil
}

// Run makes the provider, joins if the host has no identity yet, and
// starts linking in the background.
func (m *AgentMain) Run(ctx context.Context) error {
	c := &m.Config
	// Refuse what cannot work before touching the machine.
	joined := agent.HasIdentity(c.DataDir)
	if !joined && m.Join == "" {
		return errors.New("this host has not joined a cluster yet: give --join TOKEN (an administrator makes one with `lobby admin token create`) and --hub URL")
	}
	if !joined {
		if _, err := linkproto.ParseJoinToken(m.Join); err != nil {
			return fmt.Errorf("join token: %w", err)
		}
	}
	if m.provider == nil {
		p, err := local.New(local.Config{StateDir: c.DataDir, RunAsUser: m.desktopUser, Logger: c.Logger.With("component", "provider")})
		if err != nil {
			return err
		}
		m.provider = p
	}
	c.Provider = m.provider
	a, err := agent.New(*c)
	if err != nil {
		m.provider.Close()
		return err
	}
	switch {
	case !a.Joined():
		if err := a.Join(ctx, m.Join); err != nil {
			m.provider.Close()
			var r *agent.RefusedError
			if errors.As(err, &r) {
				return fmt.Errorf("join token refused: %s", r.Msg)
			}
			return err
		}
		fmt.Fprintf(m.Stdout, "Joined the cluster as host %s (%s); identity kept in %s.\n", a.Name(), a.HostID(), filepath.Join(c.DataDir, "identity"))
	case m.Join != "":
		fmt.Fprintf(m.Stdout, "This host already joined as %s (%s): --join is ignored.\n", a.Name(), a.HostID())
	}
	m.agent = a
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	m.cancel, m.done = cancel, make(chan error, 1)
	go func() { m.done <- a.Run(rctx) }()
	fmt.Fprintf(m.Stdout, "Lobby agent for host %s is running, linking to %s.\n", a.Name(), m.hubs.String())
	return nil
}

// Wait returns when the agent stops by itself (a refusal no hub would
// lift) or ctx ends.
func (m *AgentMain) Wait(ctx context.Context) error {
	select {
	case err := <-m.done:
		m.done <- err
		return err
	case <-ctx.Done():
		return nil
	}
}

// Close stops the agent; desktops keep running.
func (m *AgentMain) Close() error {
	var err error
	if m.cancel != nil {
		m.cancel()
		err = <-m.done
		m.cancel = nil
	}
	if m.provider != nil {
		err = errors.Join(err, m.provider.Close())
		m.provider = nil
	}
	return err
}

func runAgent(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	m := &AgentMain{Stdout: stdout, Stderr: stderr, Getenv: getenv}
	if err := m.ParseFlags(args); err != nil {
		return usageExit(stderr, "lobby agent", err)
	}
	if err := m.Run(ctx); err != nil {
		fmt.Fprintf(stderr, "lobby agent: %v\n", err)
		return 1
	}
	err := m.Wait(ctx)
	if cerr := m.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		fmt.Fprintf(stderr, "lobby agent: %v\n", err)
		return 1
	}
	return 0
}
