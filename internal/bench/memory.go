package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"lobby/internal/freeport"
	"lobby/internal/provider"
	"lobby/internal/provider/local"
)

// MemoryConfig configures RunMemory.
type MemoryConfig struct {
	// Binary is the lobby executable to start as `lobby dev --desktops 0`
	// in a child process; empty measures a node in this process instead.
	Binary string
	// Settle is how long the idle node and the desktop run before they
	// are measured; default 3 s.
	Settle time.Duration
	// NoDesktop skips the desktop measurement.
	NoDesktop bool
	Log       io.Writer
}

// MemoryResult is the outcome of RunMemory.
type MemoryResult struct {
	Machine Machine
	Config  MemoryConfig
	NodeHow string // how the node ran
	Node    Mem    // its VmRSS and VmHWM
	NodePss int64
	// Desktop is the Pss of one real local desktop's processes; nil when
	// not measured (DesktopNote says why).
	Desktop     []ProcMem
	DesktopNote string
	// Xvnc is a bare Xvnc's memory, as the local provider starts it and
	// without the GLX extension.
	Xvnc []XvncMem
}

// ProcMem is one process's memory.
type ProcMem struct {
	PID  int
	Name string
	Pss  int64
	RSS  int64
}

// DesktopPss is the sum of the desktop's processes' Pss.
func (r *MemoryResult) DesktopPss() int64 {
	var n int64
	for _, p := range r.Desktop {
		n += p.Pss
	}
	return n
}

// RunMemory measures an idle node's resident memory and one desktop's.
func RunMemory(ctx context.Context, cfg MemoryConfig) (*MemoryResult, error) {
	if cfg.Settle <= 0 {
		cfg.Settle = 3 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	res := &MemoryResult{Machine: ReadMachine(), Config: cfg}
	var err error
	if cfg.Binary != "" {
		err = res.childNode(ctx, cfg.Binary, cfg.Settle)
	} else {
		err = res.inProcessNode(ctx, cfg.Settle)
	}
	if err != nil {
		return nil, err
	}
	if cfg.NoDesktop {
		res.DesktopNote = "not measured (--no-desktop)"
		return res, nil
	}
	if _, err := exec.LookPath("Xvnc"); err != nil {
		res.DesktopNote = "not measured: Xvnc is not installed (apt-get install tigervnc-standalone-server twm xterm)"
		return res, nil
	}
	fmt.Fprintf(cfg.Log, "memory: starting one local desktop (Xvnc + twm + xterm)\n")
	if err := res.desktop(ctx, cfg.Settle); err != nil {
		return nil, err
	}
	fmt.Fprintf(cfg.Log, "memory: bare Xvnc, with and without GLX\n")
	for _, args := range [][]string{nil, {"-extension", "GLX"}} {
		x, err := bareXvnc(ctx, cfg.Settle, args...)
		if err != nil {
			return nil, err
		}
		res.Xvnc = append(res.Xvnc, x)
	}
	return res, nil
}

// XvncMem is the memory of a bare Xvnc (no session).
type XvncMem struct {
	Args            string
	Pss, Anon, File int64 // Pss and its anonymous and file-backed parts
}

// bareXvnc starts Xvnc alone, lets it settle and reads its Pss.
func bareXvnc(ctx context.Context, settle time.Duration, extra ...string) (XvncMem, error) {
	x, err := startXvnc(ctx, "1280x800", extra...)
	if err != nil {
		return XvncMem{}, err
	}
	defer x.stop(3 * time.Second)
	if err := sleep(ctx, settle); err != nil {
		return XvncMem{}, err
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", x.pid()))
	if err != nil {
		return XvncMem{}, err
	}
	m := XvncMem{Args: "-geometry 1280x800 -depth 24 " + strings.Join(extra, " ")}
	for key, dst := range map[string]*int64{"Pss": &m.Pss, "Pss_Anon": &m.Anon, "Pss_File": &m.File} {
		if v, ok := procField(b, key, ':'); ok {
			*dst = parseKB(v)
		}
	}
	return m, nil
}

// childNode starts `lobby dev --desktops 0` and reads its memory once it
// has settled.
func (r *MemoryResult) childNode(ctx context.Context, bin string, settle time.Duration) error {
	dir, err := os.MkdirTemp("", "lobby-bench-mem-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil { // desktop users must traverse it
		return err
	}
	port, err := freeport.Pick()
	if err != nil {
		return err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	argv := []string{bin, "dev", "--data", filepath.Join(dir, "data"), "--listen", addr, "--desktops", "0", "--log-level", "warn"}
	r.NodeHow = "child process: lobby dev --data TMP --listen " + addr + " --desktops 0 (SQLite, local provider, no desktops)"
	fmt.Fprintf(r.Config.Log, "memory: %s\n", strings.Join(argv, " "))
	c, err := startChild("lobby dev", argv, []string{"LOBBY_ADMIN_PASSWORD="}, nil)
	if err != nil {
		return err
	}
	defer c.stop(10 * time.Second)
	if err := c.waitListening(ctx, addr, 30*time.Second); err != nil {
		return err
	}
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		return fmt.Errorf("lobby dev /healthz: %w", err)
	}
	resp.Body.Close()
	if err := sleep(ctx, settle); err != nil {
		return err
	}
	if r.Node, err = ReadMem(c.pid()); err != nil {
		return err
	}
	r.NodePss, err = ReadPss(c.pid())
	return err
}

// inProcessNode starts a node in this process (memory provider, SQLite)
// and reads this process's memory, nothing subtracted.
func (r *MemoryResult) inProcessNode(ctx context.Context, settle time.Duration) error {
	r.NodeHow = "in this process (server.New, SQLite, memory provider): the harness's own memory is included, nothing subtracted"
	n, err := StartNode(ctx, NodeConfig{})
	if err != nil {
		return err
	}
	defer n.Close()
	if err := sleep(ctx, settle); err != nil {
		return err
	}
	r.Node = SelfMem()
	r.NodePss, err = ReadPss(os.Getpid())
	return err
}

// desktop starts one desktop with the local provider (Xvnc, twm and
// xterm, as lobby dev runs them), lets it settle, sums the Pss of its
// processes and deletes it.
func (r *MemoryResult) desktop(ctx context.Context, settle time.Duration) (err error) {
	dir, err := os.MkdirTemp("", "lobby-bench-desktop-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	p, err := local.New(local.Config{StateDir: dir})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, p.Close()) }()
	const name = "bench-mem"
	if _, err := p.Create(ctx, provider.Spec{Name: name}); err != nil {
		return err
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		err = errors.Join(err, p.Delete(dctx, name))
	}()
	if _, err := p.Start(ctx, name); err != nil {
		return err
	}
	if err := sleep(ctx, settle); err != nil {
		return err
	}
	pids, err := descendants(os.Getpid())
	if err != nil {
		return err
	}
	for _, pid := range pids {
		pss, err1 := ReadPss(pid)
		m, err2 := ReadMem(pid)
		if err1 != nil || err2 != nil {
			continue // gone meanwhile
		}
		r.Desktop = append(r.Desktop, ProcMem{PID: pid, Name: procName(pid), Pss: pss, RSS: m.RSS})
	}
	if len(r.Desktop) == 0 {
		return errors.New("memory: found no desktop processes")
	}
	r.DesktopNote = "local provider desktop (Xvnc 1280x800x24 + twm + xterm and its shell), as its own system user; Pss from /proc/PID/smaps_rollup"
	return nil
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
