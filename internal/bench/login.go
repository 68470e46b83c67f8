package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	"lobby/internal/auth"
)

// LoginConfig configures RunLogin.
type LoginConfig struct {
	Node     NodeConfig
	Users    int // people in the storm, each signing in once
	InFlight int // clients at once (bounded goroutines)
	// Desktops is the pool size; default InFlight+16. Each client releases
	// its desktop right after connecting, so the pool never runs dry.
	Desktops   int
	HashRuns   int // hashes timed for the floor; default 16
	CPUProfile string
	// SlowDump, when set, is a file that gets every goroutine's stack
	// once a connect or release has run for over 2 s.
	SlowDump string
	Log      io.Writer
}

func (c *LoginConfig) defaults() {
	setDefault(&c.Users, 10000)
	setDefault(&c.InFlight, 256)
	c.InFlight = min(c.InFlight, c.Users)
	setDefault(&c.Desktops, c.InFlight+16)
	setDefault(&c.HashRuns, 16)
	if c.Log == nil {
		c.Log = io.Discard
	}
}

// LoginResult is the outcome of RunLogin.
type LoginResult struct {
	Machine   Machine
	Config    LoginConfig
	StoreInfo string
	Params    auth.Params
	HashSlots int

	HashOne      time.Duration // one verification, one goroutine (median)
	HashParallel float64       // verifications per second with one goroutine per core
	// Floor is the hashing alone at the rate measured with every core
	// hashing (the "~100 hashes/s on 2 cores"); Ideal assumes
	// hashes on all cores at once run as fast as one alone (Users ×
	// HashOne ÷ cores), which shared caches and memory deny.
	Floor time.Duration
	Ideal time.Duration

	Total    time.Duration // first login sent to last desktop released
	OK       int
	Errors   int
	FirstErr string
	Login    Summary // POST /login
	Connect  Summary // POST /connect
	Desktop  Summary // time to desktop: login sent to connect answered
	MemAfter Mem
	CPU      *CPUReport
	SlowNote string // what SlowDump caught
}

// RunLogin measures a start-of-day storm: Users people, InFlight at a
// time, each POST /login then POST /connect (then POST /release, outside
// the time to desktop). The users are made through the store with one
// reused hash; every sign-in verifies a full argon2id hash.
func RunLogin(ctx context.Context, cfg LoginConfig) (_ *LoginResult, err error) {
	cfg.defaults()
	res := &LoginResult{Machine: ReadMachine(), Config: cfg, Params: cfg.Node.passwordHash(), HashSlots: cfg.Node.HashSlots}
	if res.HashSlots <= 0 {
		res.HashSlots = res.Machine.GOMAXPROCS
	}
	const pw = "storm password 1"
	fmt.Fprintf(cfg.Log, "login: timing %d argon2id verifications (%s)\n", cfg.HashRuns, res.Params)
	if res.HashOne, res.HashParallel, err = timeHashes(ctx, res.Params, pw, cfg.HashRuns, res.Machine.GOMAXPROCS); err != nil {
		return nil, err
	}
	res.Ideal = time.Duration(int64(cfg.Users) * int64(res.HashOne) / int64(res.Machine.GOMAXPROCS))
	res.Floor = res.Ideal
	if res.HashParallel > 0 {
		res.Floor = time.Duration(float64(cfg.Users) / res.HashParallel * float64(time.Second))
	}

	node, err := StartNode(ctx, cfg.Node)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, node.Close()) }()
	res.StoreInfo = node.StoreInfo
	fmt.Fprintf(cfg.Log, "login: node at %s; provisioning %d desktops, creating %d users\n", node.URL, cfg.Desktops, cfg.Users)
	if err := node.MakePool(ctx, "storm", cfg.Desktops, 5*time.Minute); err != nil {
		return nil, err
	}
	names, err := node.CreateUsers(ctx, "storm", cfg.Users, pw)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(cfg.Log, "login: storm of %d sign-ins, %d at a time (floor %s)\n", cfg.Users, cfg.InFlight, res.Floor.Round(time.Millisecond))
	prof, err := StartProfile(cfg.CPUProfile)
	if err != nil {
		return nil, err
	}
	watch := newSlowWatch(cfg.SlowDump, 2*time.Second, cfg.InFlight)
	st := storm(ctx, node.URL, names, pw, cfg.InFlight, watch)
	res.SlowNote = watch.close()
	res.CPU, err = prof.Stop()
	if err != nil {
		return nil, err
	}
	res.MemAfter = SelfMem()
	res.Total, res.OK, res.Errors, res.FirstErr = st.total, st.ok, st.errors, st.firstErr
	res.Login, res.Connect, res.Desktop = Summarize(st.login), Summarize(st.connect), Summarize(st.desktop)
	if res.OK == 0 {
		return res, fmt.Errorf("login: no one got a desktop: %s", res.FirstErr)
	}
	return res, ctx.Err()
}

// timeHashes times verifications of one password hash with the node's
// parameters: runs of them on one goroutine (median), then the rate of
// runs on each of one goroutine per core at once.
func timeHashes(ctx context.Context, p auth.Params, pw string, runs, cores int) (time.Duration, float64, error) {
	h := auth.NewHasher(p, cores)
	enc, err := h.Hash(ctx, pw)
	if err != nil {
		return 0, 0, err
	}
	one := make([]time.Duration, runs)
	for i := range one {
		t := time.Now()
		if ok, err := h.Verify(ctx, pw, enc); err != nil || !ok {
			return 0, 0, fmt.Errorf("time hashes: verify: %v %v", ok, err)
		}
		one[i] = time.Since(t)
	}
	slices.Sort(one)
	t := time.Now()
	var wg sync.WaitGroup
	per := runs
	for range cores {
		wg.Go(func() {
			for range per {
				_, _ = h.Verify(ctx, pw, enc)
			}
		})
	}
	wg.Wait()
	return one[len(one)/2], float64(per*cores) / time.Since(t).Seconds(), nil
}

type stormResult struct {
	total                   time.Duration
	ok, errors              int
	firstErr                string
	login, connect, desktop []time.Duration
}

// storm runs the sign-ins: inFlight clients take the users in order.
func storm(ctx context.Context, base string, names []string, pw string, inFlight int, watch *slowWatch) *stormResult {
	hc := NewHTTPClient(inFlight)
	st := &stormResult{}
	var mu sync.Mutex
	next := make(chan int)
	start := time.Now()
	var wg sync.WaitGroup
	for k := range inFlight {
		wg.Go(func() {
			for i := range next {
				l, c, err := signIn(ctx, hc, base, names[i], pw, func(on bool) {
					if on {
						watch.begin(k)
					} else {
						watch.end(k)
					}
				})
				mu.Lock()
				if err != nil {
					st.errors++
					if st.firstErr == "" {
						st.firstErr = err.Error()
					}
				} else {
					st.ok++
					st.login, st.connect, st.desktop = append(st.login, l), append(st.connect, c), append(st.desktop, l+c)
				}
				mu.Unlock()
			}
		})
	}
	for i := range names {
		if ctx.Err() != nil {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	st.total = time.Since(start)
	return st
}

// signIn is one person: login, connect, then release (not timed). track
// is told when the connect and release start (true) and end (false).
func signIn(ctx context.Context, hc *http.Client, base, name, pw string, track func(bool)) (login, connect time.Duration, err error) {
	defer track(false)
	var tok struct{ Token string }
	t := time.Now()
	if _, err := call(ctx, hc, "POST", base+"/api/v1/login", "", fmt.Appendf(nil, `{"username":%q,"password":%q}`, name, pw), &tok); err != nil {
		return 0, 0, fmt.Errorf("login %s: %w", name, err)
	}
	login = time.Since(t)
	var g struct{ Desktop struct{ ID string } }
	track(true)
	t = time.Now()
	if _, err := call(ctx, hc, "POST", base+"/api/v1/connect", tok.Token, []byte(`{"pool":"storm"}`), &g); err != nil {
		return 0, 0, fmt.Errorf("connect %s: %w", name, err)
	}
	connect = time.Since(t)
	if _, err := call(ctx, hc, "POST", base+"/api/v1/release", tok.Token, fmt.Appendf(nil, `{"desktop":%q}`, g.Desktop.ID), nil); err != nil {
		return 0, 0, fmt.Errorf("release %s: %w", name, err)
	}
	return login, connect, nil
}
