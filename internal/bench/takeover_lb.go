package bench

import (
	"context"
	"encoding/csv"
	"fmt"
	"lobby/internal/freeport"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// balancerCheck is how the benchmark's HAProxy checks the nodes, as the
// README's example does: GET /readyz every 500 ms, down after 2 failures.
const balancerCheck = "inter 500ms fall 2 rise 2"

// balancer is HAProxy in front of a round's nodes, with its statistics
// page on a port of its own.
type balancer struct {
	c     *child
	url   string // the frontend: http://127.0.0.1:PORT
	stats string // http://127.0.0.1:PORT/stats;csv
}

// haproxyBinary finds HAProxy ("" when it is not installed).
func haproxyBinary() string {
	for _, p := range []string{"haproxy", "/usr/sbin/haproxy"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	return ""
}

// haproxyVersion is the first line of `haproxy -v` ("" when it fails).
func haproxyVersion(bin string) string {
	out, err := exec.Command(bin, "-v").Output()
	if err != nil {
		return ""
	}
	return strings.SplitN(string(out), "\n", 2)[0]
}

// startBalancer starts HAProxy in front of the nodes and waits until it
// reports every one of them up.
func startBalancer(ctx context.Context, bin, dir string, nodes []*nodeProc) (*balancer, error) {
	front, err := freeport.Pick()
	if err != nil {
		return nil, err
	}
	stats, err := freeport.Pick()
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	fmt.Fprintf(&b, `global
    maxconn 2000
defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout tunnel 1h
    option redispatch
frontend lobby
    bind 127.0.0.1:%d
    default_backend nodes
backend nodes
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    default-server %s
`, front, balancerCheck)
	for i, n := range nodes {
		fmt.Fprintf(&b, "    server node-%d %s check\n", i+1, n.addr)
	}
	fmt.Fprintf(&b, "listen stats\n    bind 127.0.0.1:%d\n    stats enable\n    stats uri /stats\n", stats)
	path := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		return nil, err
	}
	c, err := startChild("haproxy", []string{bin, "-db", "-f", path}, nil, nil)
	if err != nil {
		return nil, err
	}
	lb := &balancer{c: c, url: fmt.Sprintf("http://127.0.0.1:%d", front), stats: fmt.Sprintf("http://127.0.0.1:%d/stats;csv", stats)}
	if err := c.waitListening(ctx, net.JoinHostPort("127.0.0.1", strconv.Itoa(stats)), 30*time.Second); err != nil {
		c.stop(5 * time.Second)
		return nil, err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		up := 0
		for i := range nodes {
			if st, err := lb.status(ctx, fmt.Sprintf("node-%d", i+1)); err == nil && st == "UP" {
				up++
			}
		}
		if up == len(nodes) {
			return lb, nil
		}
		if time.Now().After(deadline) {
			c.stop(5 * time.Second)
			return nil, fmt.Errorf("HAProxy sees %d of %d nodes up after 30 s: %s", up, len(nodes), c.out.String())
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return nil, err
		}
	}
}

var statsClient = &http.Client{Timeout: 5 * time.Second}

// status is a server's status on HAProxy's statistics page (UP, DOWN,
// "UP 1/2" while going down...).
func (lb *balancer) status(ctx context.Context, server string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", lb.stats, nil)
	if err != nil {
		return "", err
	}
	resp, err := statsClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	r := csv.NewReader(resp.Body)
	r.FieldsPerRecord = -1
	recs, err := r.ReadAll()
	if err != nil {
		return "", err
	}
	col := -1
	for _, rec := range recs {
		if len(rec) > 0 && strings.HasPrefix(rec[0], "# pxname") {
			for i, name := range rec {
				if name == "status" {
					col = i
				}
			}
			continue
		}
		if col >= 0 && len(rec) > col && rec[0] == "nodes" && rec[1] == server {
			return rec[col], nil
		}
	}
	return "", fmt.Errorf("HAProxy's statistics do not list %s", server)
}

func (lb *balancer) stop() { lb.c.stop(5 * time.Second) }
