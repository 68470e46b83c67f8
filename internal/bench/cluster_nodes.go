package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"

	"lobby/internal/auth"
	"lobby/internal/freeport"
	"lobby/internal/pki"
	"lobby/internal/server"
)

// procCluster is node processes on one PostgreSQL, as startNodes started
// them.
type procCluster struct {
	nodes []*nodeProc // by site ID - 1
	dir   string
}

func (c *procCluster) stop() {
	for _, n := range c.nodes {
		n.stop()
	}
	os.RemoveAll(c.dir)
}

// nodesSpec says how startNodes starts a cluster.
type nodesSpec struct {
	Binary  string // the lobby executable
	Nodes   int
	DBURL   string // the PostgreSQL schema they share
	DataDir string // where the cluster's temporary directory is made
	Name    string // the directory is lobby-bench-NAME-*
	Args    []string
	// SelfSite is a site run in this process (server.New, as `lobby
	// server` runs it; goroutines labelled side=node) instead of a child,
	// for a CPU profile; 0 runs every node as a child.
	SelfSite int
	Log      io.Writer
}

// startNodes starts `lobby server --plain-http --postgres URL --site-id
// N` processes one by one, with one LOBBY_CLUSTER_KEY and administrator
// password, and signs in to each; site 1 starts first and so leads.
func startNodes(ctx context.Context, s nodesSpec) (*procCluster, error) {
	dir, err := os.MkdirTemp(s.DataDir, "lobby-bench-"+s.Name+"-")
	if err != nil {
		return nil, err
	}
	c := &procCluster{dir: dir}
	key, password := pki.NewClusterKeyString(), auth.RandomPassword()
	for site := 1; site <= s.Nodes; site++ {
		port, err := freeport.Pick()
		if err != nil {
			c.stop()
			return nil, err
		}
		n := &nodeProc{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), password: password, log: s.Log,
			env: []string{"LOBBY_CLUSTER_KEY=" + key}}
		n.URL = "http://" + n.addr
		data := filepath.Join(dir, fmt.Sprintf("node-%d", site))
		if site == s.SelfSite {
			err = n.startSelf(ctx, server.Config{Listen: n.addr, DataDir: data, Postgres: s.DBURL, SiteID: site,
				Name: fmt.Sprintf("node-%d", site), ClusterKey: key, PlainHTTP: true, AdminPassword: password,
				Logger: slog.New(slog.DiscardHandler), Version: "bench"})
		} else {
			n.argv = append([]string{s.Binary, "server", "--plain-http", "--postgres", s.DBURL, "--site-id", strconv.Itoa(site),
				"--name", fmt.Sprintf("node-%d", site), "--listen", n.addr, "--data", data, "--log-level", "warn"}, s.Args...)
			err = n.start(ctx)
		}
		if err != nil {
			c.stop()
			return nil, err
		}
		c.nodes = append(c.nodes, n)
		if err := n.signIn(ctx); err != nil {
			c.stop()
			return nil, err
		}
	}
	return c, nil
}

// startSelf runs the node in this process, its goroutines labelled
// side=node for the CPU profile.
func (n *nodeProc) startSelf(ctx context.Context, cfg server.Config) error {
	fmt.Fprintf(n.log, "start site %d in this process on %s\n", cfg.SiteID, cfg.Listen)
	labels := pprof.Labels("side", "node")
	var srv *server.Server
	var err error
	pprof.Do(ctx, labels, func(ctx context.Context) { srv, err = server.New(ctx, cfg) })
	if err != nil {
		return fmt.Errorf("site %d in this process: %w", cfg.SiteID, err)
	}
	self := &Node{Server: srv, URL: srv.URL(), done: make(chan error, 1)}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	self.cancel = cancel
	go pprof.Do(rctx, labels, func(ctx context.Context) { self.done <- srv.Run(ctx) })
	n.self = self
	return nil
}
