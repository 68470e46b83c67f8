package health

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"time"

	"lobby/internal/lobby"
)

// PingPath is where a node answers who it is, for the probes of the other
// nodes and of `lobby health`. It needs no sign-in and tells nothing
// secret: the same as the node's link certificate tells anyone.
const PingPath = "/api/v1/health/ping"

// Ping is a node's answer at PingPath.
type Ping struct {
	SiteID   int       `json:"site_id"`
	Name     string    `json:"name"`
	Instance string    `json:"instance"`
	Version  string    `json:"version"`
	Time     time.Time `json:"time"`                // the node's clock
	NotReady string    `json:"not_ready,omitempty"` // what /readyz says, when not ready
}

// DefaultProbeTimeout bounds one probe.
const DefaultProbeTimeout = 3 * time.Second

// Prober probes nodes' addresses. Its connections are kept between
// probes, so a round trip is one request, not a handshake.
type Prober struct {
	client  *http.Client
	timeout time.Duration
}

// NewProber returns a prober whose probes give up after timeout (0: the
// default). It does not check the nodes' HTTPS certificates (a node's is
// often self-signed): it sends nothing secret.
func NewProber(timeout time.Duration) *Prober {
	if timeout <= 0 {
		timeout = DefaultProbeTimeout
	}
	tr := &http.Transport{
		Proxy:               nil,                                   // nodes are probed directly, as their peers reach them
		TLSClientConfig:     &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // reachability only; see above
		MaxIdleConnsPerHost: 1,
		IdleConnTimeout:     time.Minute,
	}
	return &Prober{client: &http.Client{Transport: tr, Timeout: timeout}, timeout: timeout}
}

// Close drops the kept connections.
func (p *Prober) Close() { p.client.CloseIdleConnections() }

// Probe is the result of probing one node's address.
type Probe struct {
	RTT time.Duration
	Err error
	// Ping is the node's answer (when it answered).
	Ping Ping
}

// probeHorizon: nodes whose heartbeat is older than this (by the
// prober's clock, or the database's for the check) are not probed: long
// dead, or removed soon.
const probeHorizon = 10 * time.Minute

// probeRecent probes, at once, the nodes whose heartbeat is within
// probeHorizon of now, and the node of site self however old its
// heartbeat (0: none); the i-th probe is of the i-th node returned. The
// monitor records these probes for the others to read; the check makes
// its own, from wherever it runs.
func probeRecent(ctx context.Context, p *Prober, nodes []lobby.Node, now time.Time, self int) ([]lobby.Node, []Probe) {
	var targets []lobby.Node
	for _, n := range nodes {
		if n.SiteID == self || now.Sub(n.Heartbeat) < probeHorizon {
			targets = append(targets, n)
		}
	}
	probes := make([]Probe, len(targets))
	var wg sync.WaitGroup
	for i, n := range targets {
		wg.Go(func() { probes[i] = p.Probe(ctx, n.Address, n.SiteID) })
	}
	wg.Wait()
	return targets, probes
}

// Probe asks the node at address (its listen URL, e.g.
// https://node1:8443) who it is, and fails unless it is site.
func (p *Prober) Probe(ctx context.Context, address string, site int) Probe {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	if address == "" {
		return Probe{Err: errors.New("the node advertises no address")}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(address, "/")+PingPath, nil)
	if err != nil {
		return Probe{Err: fmt.Errorf("address %q is not a URL: %w", address, err)}
	}
	start := time.Now()
	resp, err := p.client.Do(req)
	if err != nil {
		return Probe{RTT: time.Since(start), Err: explain(err)}
	}
	defer resp.Body.Close()
	var out Probe
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	out.RTT = time.Since(start)
	switch {
	case err != nil:
		out.Err = fmt.Errorf("read the answer: %w", err)
	case resp.StatusCode != http.StatusOK:
		out.Err = fmt.Errorf("it answered %s to %s: it is not a Lobby node of a release with the health check", resp.Status, PingPath)
	case json.Unmarshal(body, &out.Ping) != nil:
		out.Err = fmt.Errorf("its answer to %s is not a Lobby node's", PingPath)
	case out.Ping.SiteID != site:
		out.Err = fmt.Errorf("node %q (site ID %d) answered there, not site %d: two nodes advertise the same address", out.Ping.Name, out.Ping.SiteID, site)
	}
	return out
}

// explain words a dial error for the health report.
func explain(err error) error {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return errors.New("connection refused: nothing listens there")
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return errors.New("no answer in time (a firewall drops the packets, the host is down, or the node is stalled)")
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return fmt.Errorf("the name %s does not resolve: %v", dns.Name, dns.Err)
	}
	return err
}
