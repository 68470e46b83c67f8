package bench

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"sort"
	"strings"
	"time"
)

// Profile is a CPU profile of a measured phase (runtime/pprof), kept in
// memory for the report and written to a file when one is given, for
// `go tool pprof -top FILE`.
type Profile struct {
	buf   bytes.Buffer
	file  *os.File
	start time.Time
	cpu0  time.Duration
	stat0 cpuStat
	kids0 map[int]uint64
	off   bool // profiling was not available
}

// StartProfile starts CPU profiling this process. path may be empty.
func StartProfile(path string) (*Profile, error) {
	p := &Profile{}
	var w io.Writer = &p.buf
	if path != "" {
		f, err := os.Create(path)
		if err != nil {
			return nil, fmt.Errorf("cpu profile: %w", err)
		}
		p.file = f
		w = io.MultiWriter(&p.buf, f)
	}
	if err := pprof.StartCPUProfile(w); err != nil {
		if p.file != nil {
			p.file.Close()
			return nil, fmt.Errorf("cpu profile: %w", err)
		}
		// Another profile runs (go test -cpuprofile, or parallel tests):
		// report the CPU time without the breakdown.
		p.off = true
	}
	p.start, p.cpu0, p.stat0, p.kids0 = time.Now(), CPUTime(), readCPUStat(), childrenCPU()
	return p, nil
}

// Stop ends profiling and sorts the samples into where the CPU went.
func (p *Profile) Stop() (*CPUReport, error) {
	if !p.off {
		pprof.StopCPUProfile()
	}
	r := &CPUReport{Wall: time.Since(p.start), CPU: CPUTime() - p.cpu0, Cores: runtime.NumCPU()}
	r.MachineBusy = machineBusy(p.stat0, readCPUStat())
	r.Children = childrenDelta(p.kids0, childrenCPU())
	if p.file != nil {
		if err := p.file.Close(); err != nil {
			return r, fmt.Errorf("cpu profile: %w", err)
		}
	}
	if p.off {
		return r, nil
	}
	raw, err := parseProfile(p.buf.Bytes())
	if err != nil {
		return r, err
	}
	r.fill(raw)
	return r, nil
}

// Share is a part of the CPU time.
type Share struct {
	Name string
	CPU  time.Duration
	Frac float64 // of the sampled CPU time
}

// CPUReport says where the CPU of a measured phase went.
type CPUReport struct {
	Wall time.Duration // length of the phase
	CPU  time.Duration // user+system CPU of the process (getrusage)
	// MachineBusy is the CPU every process on the machine used
	// (/proc/stat); what exceeds CPU was used by other processes.
	MachineBusy time.Duration
	// Children is the CPU of this process's descendants (PostgreSQL
	// started by the harness, websockify, Xvnc), from /proc/PID/stat.
	Children   time.Duration
	Cores      int
	Sampled    time.Duration // CPU time covered by profile samples
	Categories []Share       // by component, largest first
	Top        []Share       // leaf functions (pprof's "flat"), largest first
}

// CoresUsed is the process's CPU time over the wall time.
func (r *CPUReport) CoresUsed() float64 {
	if r == nil || r.Wall <= 0 {
		return 0
	}
	return r.CPU.Seconds() / r.Wall.Seconds()
}

// OtherCores is the CPU other processes used, in cores, over the phase.
func (r *CPUReport) OtherCores() float64 {
	if r == nil || r.Wall <= 0 {
		return 0
	}
	return max(0, (r.MachineBusy-r.CPU-r.Children).Seconds()/r.Wall.Seconds())
}

// ChildCores is the CPU of this process's descendants, in cores.
func (r *CPUReport) ChildCores() float64 {
	if r == nil || r.Wall <= 0 {
		return 0
	}
	return r.Children.Seconds() / r.Wall.Seconds()
}

// Frac is the fraction of sampled CPU in the named category.
func (r *CPUReport) Frac(name string) float64 {
	if r == nil {
		return 0
	}
	for _, s := range r.Categories {
		if s.Name == name {
			return s.Frac
		}
	}
	return 0
}

// Write prints the categories and the top functions.
func (r *CPUReport) Write(w io.Writer, top int) {
	if r == nil {
		return
	}
	fmt.Fprintf(w, "CPU of this process over the measured phase: %.2f s in %.2f s = %.2f of %d cores (node and load generator together)\n",
		r.CPU.Seconds(), r.Wall.Seconds(), r.CoresUsed(), r.Cores)
	if r.Children > 0 {
		fmt.Fprintf(w, "CPU of its child processes (PostgreSQL, websockify or Xvnc it started): %.2f cores\n", r.ChildCores())
	}
	fmt.Fprintf(w, "CPU of other processes on the machine meanwhile: %.2f cores (/proc/stat; not ours, the machine is shared)\n", r.OtherCores())
	t := &table{}
	t.add("where the CPU went (profile)", "CPU", "share")
	for _, s := range r.Categories {
		t.add(s.Name, fmt.Sprintf("%.2f s", s.CPU.Seconds()), fmt.Sprintf("%.1f%%", 100*s.Frac))
	}
	t.write(w)
	if top > 0 && len(r.Top) > 0 {
		t := &table{}
		t.add("top functions (flat)", "CPU", "share")
		for _, s := range r.Top[:min(top, len(r.Top))] {
			t.add(s.Name, fmt.Sprintf("%.2f s", s.CPU.Seconds()), fmt.Sprintf("%.1f%%", 100*s.Frac))
		}
		t.write(w)
	}
}

// Category names, used by reports.
const (
	CatHash    = "password hashing (argon2id)"
	CatClient  = "load generator (bench clients, HTTP/WebSocket client side)"
	CatSource  = "synthetic RFB source (memory provider)"
	CatQueue   = "work queue (River)"
	CatManager = "pool manager (stocking after each kick)"
	CatStore   = "store (sqlstore, database/sql, SQLite engine or pgx)"
	CatGateway = "gateway relay (/gateway/vnc)"
	CatHTTP    = "HTTP server, API handlers, JSON, auth, assign"
	CatGC      = "garbage collector (background)"
	CatOther   = "other (scheduler, netpoll, syscalls)"
)

// categories are tried in order; a sample belongs to the first whose
// pattern appears in any frame of its stack.
var categories = []struct {
	name     string
	patterns []string
}{
	{CatHash, []string{"golang.org/x/crypto/argon2."}},
	{CatClient, []string{"lobby/internal/bench.", "net/http.(*persistConn)", "net/http.(*Transport)", "net/http.(*Client)"}},
	{CatSource, []string{"lobby/internal/provider/memory."}},
	{CatQueue, []string{"github.com/riverqueue/"}},
	{CatManager, []string{"lobby/internal/assign.(*Manager)"}},
	{CatStore, []string{"lobby/internal/store", "modernc.org/", "database/sql.", "github.com/jackc/"}},
	{CatGateway, []string{"lobby/internal/gateway."}},
	{CatHTTP, []string{"net/http.(*conn)", "lobby/internal/api", "lobby/internal/auth", "lobby/internal/assign", "encoding/json"}},
	{CatGC, []string{"runtime.gcBgMarkWorker", "runtime.bgsweep", "runtime.bgscavenge"}},
}

func (r *CPUReport) fill(p *rawProfile) {
	byCat := map[string]int64{}
	byLeaf := map[string]int64{}
	var total int64
	for _, s := range p.samples {
		v := s.value
		total += v
		frames := p.frames(s.locs)
		cat := CatOther
	find:
		for _, c := range categories {
			for _, f := range frames {
				for _, pat := range c.patterns {
					if strings.Contains(f, pat) {
						cat = c.name
						break find
					}
				}
			}
		}
		byCat[cat] += v
		if len(frames) > 0 {
			byLeaf[frames[0]] += v
		}
	}
	r.Sampled = time.Duration(total)
	r.Categories = shares(byCat, total)
	r.Top = shares(byLeaf, total)
}

func shares(m map[string]int64, total int64) []Share {
	out := make([]Share, 0, len(m))
	for k, v := range m {
		f := 0.0
		if total > 0 {
			f = float64(v) / float64(total)
		}
		out = append(out, Share{Name: k, CPU: time.Duration(v), Frac: f})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].CPU != out[j].CPU {
			return out[i].CPU > out[j].CPU
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// readGzip inflates a profile.
func readGzip(b []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	defer zr.Close()
	return io.ReadAll(zr)
}
