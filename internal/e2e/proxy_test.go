package e2e

import (
	"io"
	"net"
	"sync"
	"testing"
)

// proxy forwards TCP connections to a node. Close shuts its listener and
// cuts every connection, as when a node's listener goes away.
type proxy struct {
	ln        net.Listener
	mu        sync.Mutex
	conns     []net.Conn
	upstreams map[string]bool // local addresses of the connections to the node
}

func newProxy(tb testing.TB, target string) *proxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &proxy{ln: ln, upstreams: map[string]bool{}}
	go p.serve(target)
	tb.Cleanup(p.Close)
	return p
}

func (p *proxy) serve(target string) {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		u, err := net.Dial("tcp", target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, u)
		p.upstreams[u.LocalAddr().String()] = true
		p.mu.Unlock()
		go func() { _, _ = io.Copy(u, c); u.Close() }()
		go func() { _, _ = io.Copy(c, u); c.Close() }()
	}
}

// URL is the proxy's address as a hub URL.
func (p *proxy) URL() string { return "http://" + p.ln.Addr().String() }

// carries reports whether the node sees a connection from addr coming
// through this proxy.
func (p *proxy) carries(addr string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.upstreams[addr]
}

func (p *proxy) Close() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}
