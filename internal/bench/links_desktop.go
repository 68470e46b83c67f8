package bench

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"lobby/internal/rfb"
)

// DesktopPaths is the console of one real desktop (Xvnc, twm, xterm) of
// a `lobby agent` process with the local provider, measured directly,
// through websockify, and through the node's gateway and the link.
type DesktopPaths struct {
	How        string
	Throughput []Rate
	Latency    []PathLatency
}

const desktopAgentName = "bench-desktop-agent"

// realDesktopPaths runs the measurement; a nil result with a note means
// it was skipped.
func realDesktopPaths(ctx context.Context, cfg LinkConfig, node *Node, user *Client) (_ *DesktopPaths, note string, err error) {
	if _, err := exec.LookPath("Xvnc"); err != nil {
		return nil, "skipped: Xvnc is not installed (apt-get install tigervnc-standalone-server twm xterm)", nil
	}
	dir, err := os.MkdirTemp(cfg.Node.DataDir, "lobby-bench-desktop-agent-")
	if err != nil {
		return nil, "", err
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil { // the desktop's user traverses it
		return nil, "", err
	}
	var tok struct{ Token string }
	if err := node.Admin.Call(ctx, "POST", "/api/v1/tokens", map[string]any{"uses": 1, "expires_in": "1h"}, &tok); err != nil {
		return nil, "", fmt.Errorf("create a join token: %w", err)
	}
	argv := []string{cfg.Binary, "agent", "--join", tok.Token, "--hub", node.URL, "--data", dir, "--name", desktopAgentName, "--log-level", "warn"}
	fmt.Fprintf(cfg.Log, "link: a lobby agent process with a real desktop (local provider)\n")
	c, err := startChild("lobby agent", argv, nil, nil)
	if err != nil {
		return nil, "", err
	}
	var kids []int
	defer func() {
		c.stop(10 * time.Second)
		for _, pid := range kids { // the desktop's processes, if deleting it failed
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}()
	hostID, err := waitLinked(ctx, node, c, desktopAgentName)
	if err != nil {
		return nil, "", err
	}
	const pool = "real"
	defer func() { err = errors.Join(err, removePool(context.WithoutCancel(ctx), node.Admin, pool)) }()
	if err := node.MakePool(ctx, pool, 1, 3*time.Minute); err != nil {
		return nil, "", err
	}
	if err := onHost(ctx, node, pool, hostID); err != nil {
		return nil, "", err
	}
	kids, _ = descendants(c.pid())
	addr, password, err := desktopConsole(ctx, node, pool, dir)
	if err != nil {
		return nil, "", err
	}
	ws, wsAddr, err := startWebsockify(ctx, addr)
	if err != nil {
		return nil, "", err
	}
	defer ws.stop(3 * time.Second)
	res := &DesktopPaths{How: fmt.Sprintf("lobby agent process (local provider): Xvnc 1280x800x24 + twm + xterm as the desktop's own user, VNC authentication; websockify %s → Xvnc", wsAddr)}
	paths := []string{PathDirect, PathWebsockify, PathLink}
	dials := []dialFunc{vncDial(tcpDial(addr), password), vncDial(wsDial("ws://"+wsAddr+"/"), password), lobbyDial(user, pool)}
	for i, dial := range dials {
		fmt.Fprintf(cfg.Log, "link: real desktop, throughput through %s for %s\n", paths[i], cfg.Duration)
		// One request at a time: Xvnc merges requests that wait, so a
		// second outstanding one may never get an update of its own.
		r, err := throughput(ctx, dial, cfg.Duration, 1, "")
		if err != nil {
			return nil, "", fmt.Errorf("real desktop, throughput through %s: %w", paths[i], err)
		}
		r.Path = paths[i]
		res.Throughput = append(res.Throughput, r)
	}
	fmt.Fprintf(cfg.Log, "link: real desktop, %d round trips on each path\n", cfg.Pings)
	res.Latency, err = latency(ctx, paths, dials, cfg.Pings, cfg.Rounds)
	return res, "", err
}

// waitLinked waits until the named agent's link is up and returns its
// host ID.
func waitLinked(ctx context.Context, node *Node, c *child, name string) (string, error) {
	deadline := time.Now().Add(time.Minute)
	for {
		for _, l := range node.Server.Hub.Links() {
			if l.Peer == name && l.State == "up" {
				return l.HostID, nil
			}
		}
		if c.exited() {
			return "", fmt.Errorf("lobby agent exited: %s", c.out.String())
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("lobby agent %s not linked after a minute: %s", name, c.out.String())
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return "", err
		}
	}
}

// desktopConsole finds the pool's one desktop, its console port and the
// VNC password the local provider keeps in the agent's data directory.
func desktopConsole(ctx context.Context, node *Node, pool, agentDir string) (addr, password string, err error) {
	var page struct {
		Items []struct {
			Name        string
			ConsolePort int `json:"console_port"`
		}
	}
	if err := node.Admin.Call(ctx, "GET", "/api/v1/desktops?pool="+pool, nil, &page); err != nil {
		return "", "", err
	}
	if len(page.Items) != 1 || page.Items[0].ConsolePort == 0 {
		return "", "", fmt.Errorf("pool %s: want one desktop with a console port, have %+v", pool, page.Items)
	}
	d := page.Items[0]
	var file string
	err = filepath.WalkDir(agentDir, func(path string, e fs.DirEntry, err error) error {
		if err == nil && e.Name() == "passwd" && filepath.Base(filepath.Dir(path)) == d.Name {
			file = path
			return filepath.SkipAll
		}
		return nil
	})
	if err != nil || file == "" {
		return "", "", fmt.Errorf("the VNC password of desktop %s is not under %s: %v", d.Name, agentDir, err)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", "", err
	}
	if password, err = rfb.DecryptPassword(b); err != nil {
		return "", "", err
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(d.ConsolePort)), password, nil
}

// vncDial completes VNC authentication on what dial opens, then shows
// the viewer a None handshake, as Lobby's gateway does.
func vncDial(dial dialFunc, password string) dialFunc {
	return func(ctx context.Context) (net.Conn, error) {
		conn, err := dial(ctx)
		if err != nil {
			return nil, err
		}
		if err := rfb.ClientAuth(conn, password); err != nil {
			conn.Close()
			return nil, err
		}
		head := append([]byte("RFB 003.008\n"), 1, rfb.SecNone, 0, 0, 0, 0)
		return &preAuthed{Conn: conn, head: head, skip: 13}, nil
	}
}

// preAuthed is a connection past authentication that replays the server
// side of a None handshake and swallows the client's side (its version,
// 12 bytes, and its choice, 1 byte).
type preAuthed struct {
	net.Conn
	head []byte
	skip int
}

func (c *preAuthed) Read(p []byte) (int, error) {
	if len(c.head) > 0 {
		n := copy(p, c.head)
		c.head = c.head[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

func (c *preAuthed) Write(p []byte) (int, error) {
	n := min(c.skip, len(p))
	c.skip -= n
	if n == len(p) {
		return n, nil
	}
	m, err := c.Conn.Write(p[n:])
	return n + m, err
}
