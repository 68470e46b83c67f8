package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// AgentProcResult is the memory of one real `lobby agent` process.
type AgentProcResult struct {
	How      string
	Desktops int   // real local desktops it ran while measured
	Mem      Mem   // its VmRSS and VmHWM
	Pss      int64 // its Pss
	// DesktopProcs are its desktops' processes (Xvnc, twm, xterm, ...),
	// not counted in Mem.
	DesktopProcs []ProcMem
	Note         string
}

// realAgentName is the host name of the one real agent.
const realAgentName = "bench-real-agent"

// measureAgentProc joins one `lobby agent` process (local provider) to the
// node, gives it cfg.AgentDesktops real desktops through a pool, reads its
// memory after cfg.Settle, and removes the desktops again.
func measureAgentProc(ctx context.Context, cfg LinksConfig, node *nodeProc, dir string) (_ *AgentProcResult, err error) {
	res := &AgentProcResult{Desktops: cfg.AgentDesktops}
	if _, lerr := exec.LookPath("Xvnc"); lerr != nil && res.Desktops > 0 {
		res.Desktops, res.Note = 0, "Xvnc is not installed: measured idle"
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	token, err := node.joinToken(ctx, 1)
	if err != nil {
		return nil, err
	}
	argv := []string{cfg.Binary, "agent", "--join", token, "--hub", node.URL + ",ping=" + cfg.Ping.String(),
		"--data", dir, "--name", realAgentName, "--log-level", "warn"}
	res.How = fmt.Sprintf("lobby agent --join TOKEN --hub %s,ping=%s --data DIR --name %s (local provider)", node.URL, cfg.Ping, realAgentName)
	fmt.Fprintf(cfg.Log, "links: one real agent: %s\n", res.How)
	c, err := startChild("lobby agent", argv, nil, nil)
	if err != nil {
		return nil, err
	}
	var kids []int
	defer func() {
		c.stop(10 * time.Second)
		for _, pid := range kids { // desktops left behind by a failure
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}()
	if err := waitPeer(ctx, node, c, realAgentName, time.Minute); err != nil {
		return nil, err
	}
	if res.Desktops > 0 {
		fmt.Fprintf(cfg.Log, "links: %d real desktops on it\n", res.Desktops)
		defer func() { err = errors.Join(err, removePool(context.WithoutCancel(ctx), node.api, agentPool)) }()
		if err := makePool(ctx, node.api, agentPool, "real-{n}", res.Desktops); err != nil {
			return nil, err
		}
	}
	if err := sleep(ctx, cfg.Settle); err != nil {
		return nil, err
	}
	if res.Mem, err = ReadMem(c.pid()); err != nil {
		return nil, err
	}
	if res.Pss, err = ReadPss(c.pid()); err != nil {
		return nil, err
	}
	if kids, err = descendants(c.pid()); err != nil {
		return nil, err
	}
	for _, pid := range kids {
		pss, err1 := ReadPss(pid)
		m, err2 := ReadMem(pid)
		if err1 == nil && err2 == nil {
			res.DesktopProcs = append(res.DesktopProcs, ProcMem{PID: pid, Name: procName(pid), Pss: pss, RSS: m.RSS})
		}
	}
	return res, nil
}

// waitPeer polls the node's links until the named host is linked.
func waitPeer(ctx context.Context, node *nodeProc, c *child, name string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		ls, err := node.links(ctx)
		if err != nil {
			return err
		}
		for _, l := range ls {
			if l.Peer == name && l.State == "up" {
				return nil
			}
		}
		if c.exited() {
			return fmt.Errorf("lobby agent exited: %s", c.out.String())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("lobby agent %s not linked after %s: %s", name, timeout, c.out.String())
		}
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return err
		}
	}
}

const agentPool = "bench-real"

// inJob are power states a queued job owns.
var inJob = map[string]bool{"creating": true, "starting": true, "stopping": true, "deleting": true}

// makePool creates a pool of n desktops (without a policy: nobody is
// offered them) and waits until they are free and running.
func makePool(ctx context.Context, api *Client, name, pattern string, n int) error {
	pool := map[string]any{"name": name, "min_size": n, "max_size": n, "min_free": n, "name_pattern": pattern}
	if err := api.Call(ctx, "POST", "/api/v1/pools", pool, nil); err != nil {
		return fmt.Errorf("create pool %s: %w", name, err)
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		var p struct{ Counts PoolCounts }
		if err := api.Call(ctx, "GET", "/api/v1/pools/"+name, nil, &p); err != nil {
			return err
		}
		if p.Counts.Free == n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pool %s: %d of %d desktops free after 3 minutes", name, p.Counts.Free, n)
		}
		if err := sleep(ctx, 250*time.Millisecond); err != nil {
			return err
		}
	}
}

// removePool shrinks a pool to nothing, deletes its desktops through the
// API (their processes and users go with them), waits until they are
// gone and deletes the pool.
func removePool(ctx context.Context, api *Client, pool string) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	zero := map[string]any{"min_size": 0, "max_size": 1, "min_free": 0} // max_size must be at least 1
	if err := api.Call(ctx, "PUT", "/api/v1/pools/"+pool, zero, nil); err != nil {
		return fmt.Errorf("shrink pool %s: %w", pool, err)
	}
	asked := map[string]bool{}
	for {
		var page struct {
			Items []struct{ ID, Power string }
		}
		if err := api.Call(ctx, "GET", "/api/v1/desktops?pool="+pool, nil, &page); err != nil {
			return err
		}
		if len(page.Items) == 0 {
			break
		}
		for _, d := range page.Items {
			if asked[d.ID] || inJob[d.Power] {
				continue
			}
			if err := api.Call(ctx, "POST", "/api/v1/desktops/"+d.ID+"/actions", map[string]string{"action": "delete"}, nil); err != nil {
				return fmt.Errorf("delete desktop %s: %w", d.ID, err)
			}
			asked[d.ID] = true
		}
		if err := sleep(ctx, 250*time.Millisecond); err != nil {
			return fmt.Errorf("delete the desktops of pool %s: %w", pool, err)
		}
	}
	// A policy of the same name (Node.MakePool makes one) goes first.
	var ae *APIError
	if err := api.Call(ctx, "DELETE", "/api/v1/policies/"+pool, nil, nil); err != nil && (!errors.As(err, &ae) || ae.Status != 404) {
		return fmt.Errorf("delete policy %s: %w", pool, err)
	}
	return api.Call(ctx, "DELETE", "/api/v1/pools/"+pool, nil, nil)
}
