// Package agent is the host agent (`lobby agent`): a leaf that dials out
// to one of its upstream hubs at a time, runs the commands the node sends
// on its provider, relays console streams to desktops on its loopback,
// and reports its desktops and metrics. It never listens: hosts need no
// inbound port. Stopping the agent leaves desktops running; the next
// start re-adopts them.
package agent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/yamux"

	"lobby/internal/hostconn"
	"lobby/internal/link"
	"lobby/internal/linkproto"
	"lobby/internal/lobby"
	"lobby/internal/pki"
	"lobby/internal/provider"
)

// Config configures an agent. Zero values take the documented defaults.
type Config struct {
	Name     string // the host's name; default the machine's hostname
	DataDir  string // identity, command memory (and the local provider's desktops)
	Hubs     []linkproto.HubSetting
	Provider provider.Provider
	Release  string
	Logger   *slog.Logger

	// CheckEvery is how often the agent looks for changes to report
	// (default 2 s); FullEvery bounds the time between reports (30 s).
	CheckEvery, FullEvery time.Duration
	// BackoffMin and BackoffMax bound the wait between rounds of failed
	// attempts (1 s and 15 s); each wait is drawn at random up to the
	// bound (full jitter), so that hosts do not come back in a herd.
	BackoffMin, BackoffMax time.Duration
	// RenewBefore is how long before its certificate expires the agent
	// asks its hub for a new one (default a third of its lifetime); it
	// checks at each link and twice a day.
	RenewBefore time.Duration
}

// DefaultPing is a link's ping interval when none is set.
const DefaultPing = 5 * time.Second

// renewCheck is how often a long link checks its certificate's expiry.
const renewCheck = 12 * time.Hour

// errRenewed ends a link to link again with the renewed certificate.
var errRenewed = errors.New("linking again with the renewed certificate")

func (c *Config) validate() error {
	if c.DataDir == "" {
		return errors.New("--data is required: the directory for this host's identity")
	}
	if c.Name == "" {
		h, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("this machine's hostname is unknown (%v): give --name", err)
		}
		c.Name = h
	}
	if err := lobby.ValidName("host", c.Name); err != nil {
		return fmt.Errorf("%s: give --name", lobby.ErrorMessage(err))
	}
	if c.Provider == nil {
		return errors.New("agent: no provider")
	}
	for i := range c.Hubs {
		h := &c.Hubs[i]
		if _, err := link.LinkURL(h.URL); err != nil {
			return err
		}
		if err := link.ValidMask(h.NameMask); err != nil {
			return err
		}
		if h.Ping == 0 {
			h.Ping = linkproto.Duration(DefaultPing)
		}
		if time.Duration(h.Ping) < 200*time.Millisecond {
			return fmt.Errorf("hub %s: ping interval %s is too short: use 200ms or more", h.URL, time.Duration(h.Ping))
		}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Release == "" {
		c.Release = "dev"
	}
	setDefault(&c.CheckEvery, 2*time.Second)
	setDefault(&c.FullEvery, 30*time.Second)
	setDefault(&c.BackoffMin, time.Second)
	setDefault(&c.BackoffMax, 15*time.Second)
	setDefault(&c.RenewBefore, pki.HostLifetime/3)
	return nil
}

func setDefault(d *time.Duration, v time.Duration) {
	if *d == 0 {
		*d = v
	}
}

// Agent is a host's agent.
type Agent struct {
	cfg  Config
	log  *slog.Logger
	idp  atomic.Pointer[identity] // swapped when the certificate is renewed
	cmds *commandLog
	cpu  cpuSampler

	changed chan struct{}  // a command ran: report soon
	running sync.WaitGroup // commands under way

	mu     sync.Mutex
	status Status
}

// Status is the agent's view of its link.
type Status struct {
	Hub       string    // the hub URL it is linked to; empty when not linked
	HubName   string    // the hub's node name
	Since     time.Time // linked since, or trying since
	LastError string
}

// New loads the host's identity, if it has joined.
func New(cfg Config) (*Agent, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory %s: %w", cfg.DataDir, err)
	}
	id, err := loadIdentity(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	cmds, err := openCommandLog(filepath.Join(cfg.DataDir, "commands.json"))
	if err != nil {
		return nil, err
	}
	a := &Agent{cfg: cfg, log: cfg.Logger, cmds: cmds, changed: make(chan struct{}, 1)}
	a.idp.Store(id)
	if id != nil && id.name != cfg.Name {
		a.log.Warn("this host joined under another name; the name in its certificate is kept (join again to rename)", "name", id.name, "asked", cfg.Name)
	}
	return a, nil
}

// Joined reports whether the host has an identity.
func (a *Agent) Joined() bool { return a.idp.Load() != nil }

// HostID is the host's ID, once joined.
func (a *Agent) HostID() string {
	id := a.idp.Load()
	if id == nil {
		return ""
	}
	return id.hostID
}

// DataDir is where the agent keeps its identity.
func (a *Agent) DataDir() string { return a.cfg.DataDir }

// Name is the host's name.
func (a *Agent) Name() string {
	if id := a.idp.Load(); id != nil {
		return id.name
	}
	return a.cfg.Name
}

// Status reports the link.
func (a *Agent) Status() Status {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.status
}

func (a *Agent) setStatus(s Status) {
	a.mu.Lock()
	a.status = s
	a.mu.Unlock()
}

// RefusedError is a hub's refusal; Code is a linkproto refusal code.
type RefusedError struct {
	Hub  string
	Code string
	Msg  string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("hub %s refused this host: %s", e.Hub, e.Msg)
}

// fatal reports whether a refusal holds for every hub of the cluster, so
// that trying others is pointless.
func fatal(err error) bool {
	var r *RefusedError
	if !errors.As(err, &r) {
		return false
	}
	switch r.Code {
	case linkproto.CodeRevoked, linkproto.CodeBadCert, linkproto.CodeBadToken, linkproto.CodeExpiredToken, linkproto.CodeNameTaken:
		return true
	}
	return false
}

// Join redeems a join token at the first hub that answers and keeps the
// identity it yields. A refused token is a *RefusedError (codes
// bad_token, expired_token, name_taken).
func (a *Agent) Join(ctx context.Context, token string) error {
	t, err := linkproto.ParseJoinToken(token)
	if err != nil {
		return err
	}
	if len(a.cfg.Hubs) == 0 {
		return errors.New("no hub to join: give --hub URL (the node's address, e.g. https://node:8443)")
	}
	key, csr, err := pki.NewKeyAndCSR(a.cfg.Name)
	if err != nil {
		return err
	}
	var errs []error
	for _, hub := range a.cfg.Hubs {
		welcome, ca, err := a.joinAt(ctx, hub, t, csr)
		if err != nil {
			if fatal(err) || ctx.Err() != nil {
				return err
			}
			errs = append(errs, err)
			continue
		}
		if err := saveIdentity(a.cfg.DataDir, key, welcome.Cert, ca); err != nil {
			return fmt.Errorf("keep this host's identity: %w", err)
		}
		id, err := loadIdentity(a.cfg.DataDir)
		if err != nil {
			return err
		}
		a.idp.Store(id)
		a.log.Info("joined the cluster", "host", id.name, "id", id.hostID, "hub", hub.URL, "hub_name", welcome.Hub)
		return nil
	}
	return fmt.Errorf("could not join through any hub: %w", errors.Join(errs...))
}

func (a *Agent) joinAt(ctx context.Context, hub linkproto.HubSetting, t linkproto.JoinToken, csr []byte) (*linkproto.Welcome, *x509.Certificate, error) {
	conn, err := a.handshake(ctx, hub, nil, t.CAFingerprint, nil, linkproto.Hello{
		Kind: linkproto.KindJoin, TokenID: t.ID, TokenSecret: t.Secret, CSR: csr})
	if err != nil {
		return nil, nil, err
	}
	defer conn.Close()
	chain := conn.tls.ConnectionState().PeerCertificates
	var ca *x509.Certificate
	for _, c := range chain[1:] {
		if pki.MatchFingerprint(c, t.CAFingerprint) {
			ca = c
		}
	}
	if len(conn.welcome.Cert) == 0 || ca == nil {
		return nil, nil, fmt.Errorf("hub %s accepted the token but sent no certificate", hub.URL)
	}
	return &conn.welcome, ca, nil
}

// handshaked is a link after Hello/Welcome.
type handshaked struct {
	tls     *tls.Conn
	welcome linkproto.Welcome
}

func (h *handshaked) Close() error { return h.tls.Close() }

// handshake dials a hub, runs the inner TLS (pinning the CA by
// certificate or fingerprint) and exchanges Hello and Welcome.
func (a *Agent) handshake(ctx context.Context, hub linkproto.HubSetting, ca *x509.Certificate, fp [32]byte, cert *tls.Certificate, hello linkproto.Hello) (*handshaked, error) {
	ctx, cancel := context.WithTimeout(ctx, link.HandshakeTimeout)
	defer cancel()
	raw, err := link.Dial(ctx, hub.URL, hub.SecureOnly)
	if err != nil {
		return nil, err
	}
	conn := tls.Client(raw, link.ClientTLS(ca, fp, cert, hub.URL, hub.NameMask))
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	if err := conn.HandshakeContext(ctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("link to hub %s: %w", hub.URL, err)
	}
	hello.Proto, hello.Name, hello.Release, hello.Provider = linkproto.Version, a.cfg.Name, a.cfg.Release, a.cfg.Provider.Name()
	if id := a.idp.Load(); id != nil {
		hello.Name = id.name
	}
	var w linkproto.Welcome
	if err := linkproto.WriteFrame(conn, hello); err != nil {
		conn.Close()
		return nil, fmt.Errorf("link to hub %s: %w", hub.URL, err)
	}
	if err := linkproto.ReadFrame(conn, &w); err != nil {
		conn.Close()
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("hub %s closed the link without an answer: its certificate check may have failed (see the node's log)", hub.URL)
		}
		return nil, fmt.Errorf("link to hub %s: %w", hub.URL, err)
	}
	if w.Error != nil {
		conn.Close()
		return nil, &RefusedError{Hub: hub.URL, Code: w.Error.Code, Msg: w.Error.Message}
	}
	_ = conn.SetDeadline(time.Time{})
	return &handshaked{tls: conn, welcome: w}, nil
}

// Run keeps one link up until ctx ends, moving to the next hub when one
// goes away. It returns nil when ctx ends, or an error when every hub of
// the cluster would refuse this host (revoked, unknown certificate).
func (a *Agent) Run(ctx context.Context) error {
	if a.idp.Load() == nil {
		return errors.New("this host has not joined a cluster: run `lobby agent --join TOKEN --hub URL` (make a token with `lobby admin token create`)")
	}
	hubs := slices.DeleteFunc(slices.Clone(a.cfg.Hubs), func(h linkproto.HubSetting) bool { return !h.AutoConnect })
	if len(hubs) == 0 {
		return errors.New("no hub to link to: give --hub URL, or turn auto-connect on for one")
	}
	defer a.running.Wait() // commands outlive their links, not the agent
	round, i := 0, 0
	for ctx.Err() == nil {
		hub := hubs[i%len(hubs)]
		a.setStatus(Status{Hub: "", Since: time.Now(), LastError: a.Status().LastError})
		up, err := a.linkOnce(ctx, hub)
		if ctx.Err() != nil {
			return nil
		}
		if fatal(err) {
			return err
		}
		if errors.Is(err, errRenewed) {
			continue // the same hub, at once
		}
		msg := "the link ended"
		if err != nil {
			msg = err.Error()
		}
		a.log.Warn("link down", "hub", hub.URL, "up", up.Round(time.Millisecond), "reason", msg)
		a.setStatus(Status{Since: time.Now(), LastError: msg})
		i++
		var wait time.Duration
		switch {
		case up > 0:
			// The hub went away: try the next one almost at once,
			// spread over a second so a restarted node is not stormed.
			round = 0
			wait = rand.N(a.cfg.BackoffMin)
		case i%len(hubs) == 0:
			// A whole round failed: back off, exponentially, with jitter.
			round++
			bound := min(a.cfg.BackoffMin<<min(round, 10), a.cfg.BackoffMax)
			wait = rand.N(bound) + bound/4
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
	return nil
}

// linkOnce runs one link until it ends and says how long it was up.
func (a *Agent) linkOnce(ctx context.Context, hub linkproto.HubSetting) (time.Duration, error) {
	id := a.idp.Load()
	conn, err := a.handshake(ctx, hub, id.ca, [32]byte{}, &id.cert, linkproto.Hello{
		Kind: linkproto.KindLeaf, Ping: hub.Ping, Upstreams: a.cfg.Hubs})
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	sess, err := link.Client(conn.tls)
	if err != nil {
		return 0, err
	}
	defer sess.Close()
	ping := time.Duration(hub.Ping)
	if conn.welcome.Ping > 0 {
		ping = time.Duration(conn.welcome.Ping) // what the hub settled on
	}
	start := time.Now()
	a.setStatus(Status{Hub: hub.URL, HubName: conn.welcome.Hub, Since: start})
	a.log.Info("linked", "hub", hub.URL, "hub_name", conn.welcome.Hub, "site_id", conn.welcome.SiteID)
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-lctx.Done():
			sess.Close()
		case <-sess.CloseChan():
		}
	}()
	var wg sync.WaitGroup
	var silent error
	if err := link.SetUserTimeout(conn.tls, link.SilentAfter(ping)); err != nil {
		a.log.Debug("TCP_USER_TIMEOUT not set: a dead path to the hub is found by the hub's pings only", "err", err)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if silent = link.Heartbeat(conn.tls, ping, sess.CloseChan()); silent != nil {
			sess.Close()
		}
	}()
	var renewed atomic.Bool
	wg.Add(1)
	go func() {
		defer wg.Done()
		if a.renewWhenDue(lctx, sess, id) {
			renewed.Store(true)
			sess.Close()
		}
	}()
	wg.Add(1)
	var repErr error
	go func() { defer wg.Done(); repErr = a.reports(lctx, sess); sess.Close() }()
	for {
		s, err := sess.AcceptStream()
		if err != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer s.Close()
			link.ServeLeafStream(lctx, s, leafServer{a, ctx}, "this agent")
		}()
	}
	cancel()
	wg.Wait()
	if renewed.Load() {
		return time.Since(start), errRenewed
	}
	if silent != nil {
		return time.Since(start), fmt.Errorf("hub %s: %w", hub.URL, silent)
	}
	return time.Since(start), repErr
}

// renewWhenDue renews the host's certificate when it is due, checking at
// once and then every renewCheck while the link lasts; true when it did.
func (a *Agent) renewWhenDue(ctx context.Context, sess *yamux.Session, id *identity) bool {
	t := time.NewTicker(renewCheck)
	defer t.Stop()
	for {
		if left := time.Until(id.cert.Leaf.NotAfter); left < a.cfg.RenewBefore {
			if err := a.renew(ctx, sess, id); err != nil {
				if ctx.Err() == nil {
					a.log.Warn("renew this host's certificate (the next try is at the next link, or in 12 h)", "expires", id.cert.Leaf.NotAfter, "err", err)
				}
				return false
			}
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
}

// renew asks the hub for a certificate with a new key and keeps it. The
// old certificate still works until the hub sees the new one on a link.
func (a *Agent) renew(ctx context.Context, sess *yamux.Session, id *identity) error {
	key, csr, err := pki.NewKeyAndCSR(id.name)
	if err != nil {
		return err
	}
	s, err := sess.OpenStream()
	if err != nil {
		return err
	}
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(link.HandshakeTimeout))
	if err := linkproto.WriteFrame(s, linkproto.Open{Type: linkproto.StreamRenew, CSR: csr}); err != nil {
		return err
	}
	var res linkproto.Result
	if err := linkproto.ReadFrame(s, &res); err != nil {
		return fmt.Errorf("no answer from the hub: %w", err)
	}
	if res.Error != nil {
		return link.ErrorFromWire(res.Error)
	}
	cert, err := x509.ParseCertificate(res.Cert)
	if err != nil {
		return fmt.Errorf("the hub's certificate: %w", err)
	}
	got, err := pki.Verify(id.ca, []*x509.Certificate{cert}, time.Now())
	if err != nil || got.Kind != pki.KindHost || got.ID != id.hostID {
		return fmt.Errorf("the hub answered with a certificate for %v (%v), not this host's", got, err)
	}
	if err := saveRenewal(a.cfg.DataDir, key, res.Cert); err != nil {
		return fmt.Errorf("keep the renewed certificate: %w", err)
	}
	nid, err := loadIdentity(a.cfg.DataDir)
	if err != nil {
		return err
	}
	a.idp.Store(nid)
	a.log.Info("certificate renewed", "serial", pki.SerialHex(cert.SerialNumber), "expires", cert.NotAfter)
	return nil
}

// leafServer answers the streams the hub opens; run is the agent's
// context (the link's ends sooner).
type leafServer struct {
	a   *Agent
	run context.Context
}

// Command runs to its end even if the link drops (its node died): the
// node that takes the job over resends it, and gets this run's result
// from memory instead of a second run.
func (l leafServer) Command(ctx context.Context, cmd linkproto.Command) (linkproto.Result, bool) {
	res := make(chan linkproto.Result, 1)
	l.a.running.Add(1)
	go func() { defer l.a.running.Done(); res <- l.a.command(l.run, cmd) }()
	select {
	case r := <-res:
		return r, true
	case <-ctx.Done():
		return linkproto.Result{}, false
	}
}

func (l leafServer) List(ctx context.Context) (linkproto.Report, error) { return l.a.report(ctx) }

// DialConsole dials a desktop's console (the provider authenticates to
// it), which the stream relays.
func (l leafServer) DialConsole(ctx context.Context, desktop string) (net.Conn, error) {
	return l.a.cfg.Provider.DialConsole(ctx, desktop)
}

// command runs a command once per (ID, Op); a read-only get always runs.
func (a *Agent) command(ctx context.Context, cmd linkproto.Command) linkproto.Result {
	key := cmd.ID + "/" + cmd.Op
	if cmd.ID == "" || cmd.Op == "get" {
		key = ""
	}
	// On the provider, as the node's in-process agent runs it.
	res, repeated := a.cmds.run(key, func() linkproto.Result { return link.RunCommand(ctx, hostconn.Local{P: a.cfg.Provider}, cmd) })
	if repeated {
		a.log.Info("command already run: answered from memory", "id", cmd.ID, "op", cmd.Op, "desktop", cmd.Desktop)
	} else if cmd.Op != "get" {
		a.log.Info("command", "id", cmd.ID, "op", cmd.Op, "desktop", cmd.Desktop, "ok", res.Error == nil)
		select {
		case a.changed <- struct{}{}:
		default:
		}
	}
	return res
}

// reports sends a report when link comes up, after commands, whenever
// the desktops change, and at least every FullEvery.
func (a *Agent) reports(ctx context.Context, sess *yamux.Session) error {
	s, err := sess.OpenStream()
	if err != nil {
		return err
	}
	defer s.Close()
	if err := linkproto.WriteFrame(s, linkproto.Open{Type: linkproto.StreamReport}); err != nil {
		return err
	}
	var last []linkproto.Desktop
	var sent time.Time
	t := time.NewTicker(a.cfg.CheckEvery)
	defer t.Stop()
	for {
		rep, err := a.report(ctx)
		if err != nil && ctx.Err() == nil {
			a.log.Warn("list desktops", "err", err)
		}
		if err == nil && (sent.IsZero() || !slices.Equal(rep.Desktops, last) || time.Since(sent) >= a.cfg.FullEvery) {
			if err := linkproto.WriteFrame(s, rep); err != nil {
				return nil // the link ended
			}
			last, sent = rep.Desktops, time.Now()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-a.changed:
		}
	}
}

// report lists the desktops and samples the host's metrics.
func (a *Agent) report(ctx context.Context) (linkproto.Report, error) {
	ds, err := a.cfg.Provider.List(ctx)
	if err != nil {
		return linkproto.Report{}, err
	}
	rep := linkproto.Report{Desktops: make([]linkproto.Desktop, len(ds))}
	for i, d := range ds {
		rep.Desktops[i] = link.ToWire(d)
	}
	slices.SortFunc(rep.Desktops, func(x, y linkproto.Desktop) int {
		if x.Name < y.Name {
			return -1
		}
		if x.Name > y.Name {
			return 1
		}
		return 0
	})
	rep.CPUPercent = a.cpu.sample()
	rep.MemTotal, rep.MemUsed = memory()
	return rep, nil
}
