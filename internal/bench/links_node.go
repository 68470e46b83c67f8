package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"lobby/internal/auth"
	"lobby/internal/freeport"
	"lobby/internal/link"
)

// nodeProc is a node run as a child process, `lobby server --plain-http`,
// that the links benchmark measures from /proc, signs in to over its
// REST API, and kills and restarts on the same data directory.
type nodeProc struct {
	argv     []string
	env      []string // beside LOBBY_ADMIN_PASSWORD
	addr     string
	URL      string
	password string
	api      *Client
	c        *child
	self     *Node // the node runs in this process instead (profiling)
	log      io.Writer
}

// startNodeSelf starts the node in this process (StartNode: server.New,
// SQLite, with an in-process agent that has no desktops), its goroutines
// labelled side=node for the CPU profile.
func startNodeSelf(ctx context.Context, dir string, log io.Writer) (*nodeProc, error) {
	var n *Node
	var err error
	pprof.Do(ctx, pprof.Labels("side", "node"), func(ctx context.Context) {
		n, err = StartNode(ctx, NodeConfig{DataDir: dir})
	})
	if err != nil {
		return nil, err
	}
	return &nodeProc{URL: n.URL, api: n.Admin, self: n, log: log}, nil
}

// startNodeProc starts `lobby server --plain-http --data DIR --listen
// 127.0.0.1:PORT` and signs its administrator in.
func startNodeProc(ctx context.Context, bin, dir string, log io.Writer) (*nodeProc, error) {
	port, err := freeport.Pick()
	if err != nil {
		return nil, err
	}
	n := &nodeProc{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), password: auth.RandomPassword(), log: log}
	n.URL = "http://" + n.addr
	n.argv = []string{bin, "server", "--plain-http", "--data", filepath.Join(dir, "node"), "--listen", n.addr,
		"--name", "bench-node", "--log-level", "warn"}
	if err := n.start(ctx); err != nil {
		return nil, err
	}
	if err := n.signIn(ctx); err != nil {
		n.stop()
		return nil, err
	}
	return n, nil
}

// how describes the node's command line for a report.
func (n *nodeProc) how() string {
	if n.self != nil {
		return "in this process (server.New, as lobby server --plain-http runs it, plus an in-process agent without desktops)"
	}
	return strings.Join(append([]string{"lobby"}, n.argv[1:]...), " ")
}

// start starts the child and waits until it answers /healthz.
func (n *nodeProc) start(ctx context.Context) error {
	fmt.Fprintf(n.log, "start %s\n", n.how())
	c, err := startChild("lobby server", n.argv, append([]string{"LOBBY_ADMIN_PASSWORD=" + n.password}, n.env...), nil)
	if err != nil {
		return err
	}
	n.c = c
	if err := c.waitListening(ctx, n.addr, time.Minute); err != nil {
		n.stop()
		return err
	}
	return n.healthy(ctx, 30*time.Second)
}

// healthy polls /healthz until it answers 200.
func (n *nodeProc) healthy(ctx context.Context, timeout time.Duration) error {
	hc := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(timeout)
	for {
		req, err := http.NewRequestWithContext(ctx, "GET", n.URL+"/healthz", nil)
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) || n.c.exited() {
			return fmt.Errorf("lobby server not healthy after %s: %v: %s", timeout, err, n.c.out.String())
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
}

// signIn signs the administrator in through POST /api/v1/login.
func (n *nodeProc) signIn(ctx context.Context) error {
	hc := NewHTTPClient(4)
	var out struct{ Token string }
	c := &Client{HTTP: hc, Base: n.URL}
	if err := c.Call(ctx, "POST", "/api/v1/login", map[string]string{"username": "admin", "password": n.password}, &out); err != nil {
		return fmt.Errorf("sign in as admin: %w", err)
	}
	c.Token = out.Token
	n.api = c
	return nil
}

// joinToken creates a join token for uses agents through POST
// /api/v1/tokens, as an administrator does.
func (n *nodeProc) joinToken(ctx context.Context, uses int) (string, error) {
	var out struct{ Token string }
	if err := n.api.Call(ctx, "POST", "/api/v1/tokens", map[string]any{"uses": uses, "expires_in": "2h"}, &out); err != nil {
		return "", fmt.Errorf("create a join token: %w", err)
	}
	if out.Token == "" {
		return "", errors.New("create a join token: the answer has no token")
	}
	return out.Token, nil
}

// links lists the node's links (GET /api/v1/links).
func (n *nodeProc) links(ctx context.Context) ([]link.Status, error) {
	var out struct{ Items []link.Status }
	if err := n.api.Call(ctx, "GET", "/api/v1/links", nil, &out); err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	return out.Items, nil
}

// countDesktops pages through GET /api/v1/desktops.
func (n *nodeProc) countDesktops(ctx context.Context) (int, error) {
	total, after := 0, ""
	for {
		var page struct {
			Items []struct{ ID string }
			Next  string
		}
		path := "/api/v1/desktops?limit=1000"
		if after != "" {
			path += "&after=" + after
		}
		if err := n.api.Call(ctx, "GET", path, nil, &page); err != nil {
			return total, fmt.Errorf("list desktops: %w", err)
		}
		total += len(page.Items)
		if page.Next == "" || len(page.Items) == 0 {
			return total, nil
		}
		after = page.Next
	}
}

// pid is the running node's process ID.
func (n *nodeProc) pid() int {
	if n.self != nil {
		return os.Getpid()
	}
	return n.c.pid()
}

// cpu is the node's user+system CPU so far, from /proc/PID/stat.
func (n *nodeProc) cpu() (time.Duration, error) {
	return procCPU(n.pid())
}

// kill ends the node with SIGKILL and waits for it.
func (n *nodeProc) kill() error {
	if err := syscall.Kill(n.pid(), syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill the node: %w", err)
	}
	select {
	case <-n.c.done:
		return nil
	case <-time.After(30 * time.Second):
		return errors.New("the node did not die within 30 s of SIGKILL")
	}
}

// stop ends the node with SIGTERM (SIGKILL after 30 s).
func (n *nodeProc) stop() {
	if n.self != nil {
		_ = n.self.Close()
	}
	if n.c != nil {
		n.c.stop(30 * time.Second)
	}
}

// linkStatus is one row of GET /api/v1/links.
type linkStatus = link.Status

// hostsReported sums desktops_running over the hosts whose name starts
// with prefix and that are up (GET /api/v1/hosts): what their latest
// reports said, written after the report was reconciled.
func (n *nodeProc) hostsReported(ctx context.Context, prefix string) (hosts, running int, err error) {
	after := ""
	for {
		var page struct {
			Items []struct {
				Name            string
				State           string
				DesktopsRunning int `json:"desktops_running"`
			}
			Next string
		}
		path := "/api/v1/hosts?limit=1000"
		if after != "" {
			path += "&after=" + after
		}
		if err := n.api.Call(ctx, "GET", path, nil, &page); err != nil {
			return hosts, running, fmt.Errorf("list hosts: %w", err)
		}
		for _, h := range page.Items {
			if strings.HasPrefix(h.Name, prefix) && h.State == "up" {
				hosts++
				running += h.DesktopsRunning
			}
		}
		if page.Next == "" || len(page.Items) == 0 {
			return hosts, running, nil
		}
		after = page.Next
	}
}
