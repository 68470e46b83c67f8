package link

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"lobby/internal/linkproto"
)

func TestMaskBytesMatchesBytewise(t *testing.T) {
	t.Parallel()
	mask := [4]byte{0x12, 0x34, 0x56, 0x78}
	sizes := []int{maskBlock/4 - 1, maskBlock / 4, maskBlock - 1, maskBlock, maskBlock + 1, 3*maskBlock + 7, 65537}
	for n := range 40 {
		sizes = append(sizes, n)
	}
	for pos := range 4 {
		for _, n := range sizes {
			b := make([]byte, n)
			for i := range b {
				b[i] = byte(rand.N(256))
			}
			want := bytes.Clone(b)
			for i := range want {
				want[i] ^= mask[(pos+i)&3]
			}
			copied := make([]byte, n) // masked while copied: the writer's way
			if maskBytes(mask, pos, copied, b); !bytes.Equal(copied, want) {
				t.Fatalf("pos %d n %d: masked into another slice differently from byte by byte", pos, n)
			}
			if next := maskBytes(mask, pos, b, b); next != (pos+n)&3 {
				t.Fatalf("pos %d n %d: next position %d, want %d", pos, n, next, (pos+n)&3)
			}
			if !bytes.Equal(b, want) {
				t.Fatalf("pos %d n %d: masked differently from byte by byte", pos, n)
			}
		}
	}
}

func BenchmarkMaskBytes(b *testing.B) {
	buf := make([]byte, 16<<10) // a TLS record
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		maskBytes([4]byte{1, 2, 3, 4}, 1, buf, buf)
	}
}

// payloads are the sizes that cross every header length (7-bit, 16-bit,
// 64-bit) and the frame split.
var payloads = []int{1, 125, 126, 65535, 65536, 3*wsMaxFrame + 17}

func pattern(n, seed int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + seed)
	}
	return b
}

// Our server side against a standard WebSocket client (the library the
// gateway uses): frames, masking and pings must interoperate.
func TestWSAcceptInteroperates(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := Accept(w, r)
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.Copy(c, c) // echo
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/link", &websocket.DialOptions{Subprotocols: []string{linkproto.Subprotocol}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	ws.SetReadLimit(-1)
	c := websocket.NetConn(ctx, ws, websocket.MessageBinary)
	for i, n := range payloads {
		want := pattern(n, i)
		go func() { _, _ = c.Write(want) }()
		got := make([]byte, n)
		if _, err := io.ReadFull(c, got); err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%d bytes came back changed", n)
		}
	}
	// The server's reader answers a client's ping (which the client's
	// reader notes).
	go func() { _, _ = io.Copy(io.Discard, c) }()
	if err := ws.Ping(ctx); err != nil {
		t.Fatalf("ping: %v", err)
	}
}

// Our client side against a standard WebSocket server.
func TestWSDialInteroperates(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{linkproto.Subprotocol}})
		if err != nil {
			return
		}
		ws.SetReadLimit(-1)
		c := websocket.NetConn(r.Context(), ws, websocket.MessageBinary)
		defer c.Close()
		_, _ = io.Copy(c, c)
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := Dial(ctx, srv.URL, false)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i, n := range payloads {
		want := pattern(n, i)
		go func() { _, _ = c.Write(want) }()
		got := make([]byte, n)
		if _, err := io.ReadFull(c, got); err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%d bytes came back changed", n)
		}
	}
}

func TestWSRefusesWhatIsNotALink(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = Accept(w, r) }))
	defer srv.Close()
	for _, tc := range []struct {
		name    string
		headers map[string]string
		want    string
	}{
		{"plain GET", nil, "takes WebSocket upgrades from `lobby agent`"},
		{"other subprotocol", map[string]string{"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
			"Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Protocol": "chat"}, "subprotocol lobby-link required"},
		{"old version", map[string]string{"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "8",
			"Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Protocol": linkproto.Subprotocol}, "version 13"},
	} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/link", nil)
		for k, v := range tc.headers {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), tc.want) {
			t.Errorf("%s: %s %q, want 400 with %q", tc.name, resp.Status, body, tc.want)
		}
	}
	// A plain HTTP server that is not a node.
	other := httptest.NewServer(http.NotFoundHandler())
	defer other.Close()
	if _, err := Dial(context.Background(), other.URL, false); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("dialling a non-node: %v, want the 404 named", err)
	}
}

// freezer forwards TCP both ways until frozen; then it holds the
// connections open and passes nothing, like a peer that hangs or a
// network that drops packets without a reset.
type freezer struct {
	ln     net.Listener
	target string
	frozen atomic.Bool
}

func (f *freezer) serve() {
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		go func() {
			u, err := net.Dial("tcp", f.target)
			if err != nil {
				c.Close()
				return
			}
			pipe := func(dst, src net.Conn) {
				buf := make([]byte, 32<<10)
				for {
					n, err := src.Read(buf)
					if err != nil {
						dst.Close()
						return
					}
					for f.frozen.Load() {
						time.Sleep(10 * time.Millisecond)
					}
					if _, err := dst.Write(buf[:n]); err != nil {
						return
					}
				}
			}
			go pipe(u, c)
			pipe(c, u)
		}()
	}
}

func TestLivenessEndsASilentLink(t *testing.T) {
	t.Parallel()
	const interval = 100 * time.Millisecond
	serverErr := make(chan error, 1)
	var serverRTT atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := Accept(w, r)
		if err != nil {
			serverErr <- err
			return
		}
		defer c.Close()
		wt := newWatch(c, interval)
		go func() { _, _ = io.Copy(io.Discard, c) }() // the reader takes heartbeats and pongs in
		for now := range time.Tick(interval / 4) {
			if err := wt.check(now); err != nil {
				serverErr <- err
				return
			}
			if rtt := wt.RTT(); rtt > 0 {
				serverRTT.Store(int64(rtt))
			}
		}
	}))
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f := &freezer{ln: ln, target: strings.TrimPrefix(srv.URL, "http://")}
	go f.serve()
	defer f.frozen.Store(false) // let the held connections close

	c, err := Dial(context.Background(), "http://"+ln.Addr().String(), false)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	go func() { _, _ = io.Copy(io.Discard, c) }()
	clientErr := make(chan error, 1)
	go func() { clientErr <- Heartbeat(c, interval, make(chan struct{})) }()

	// While traffic flows, neither side gives up, and the hub measures
	// round trips.
	deadline := time.Now().Add(20 * time.Second)
	for serverRTT.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the hub measured no round trip")
		}
		time.Sleep(interval)
	}
	select {
	case err := <-serverErr:
		t.Fatalf("the hub ended a live link: %v", err)
	case err := <-clientErr:
		t.Fatalf("the agent ended a live link: %v", err)
	case <-time.After(5 * RTTEvery * interval): // the agent's limit is 3 of the hub's pings
	}

	f.frozen.Store(true)
	for _, ch := range []chan error{serverErr, clientErr} {
		select {
		case err := <-ch:
			if !errors.Is(err, ErrSilent) {
				t.Errorf("a frozen link ended with %v, want ErrSilent", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("a frozen link was not ended")
		}
	}
}

// Concurrent writers (yamux's send loop and the reader's pongs) never
// interleave inside a frame.
func TestWSConcurrentWritesStayFramed(t *testing.T) {
	t.Parallel()
	got := make(chan []byte, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := Accept(w, r)
		if err != nil {
			return
		}
		defer c.Close()
		b, _ := io.ReadAll(c)
		got <- b
	}))
	defer srv.Close()
	c, err := Dial(context.Background(), srv.URL, false)
	if err != nil {
		t.Fatal(err)
	}
	ws := c.(*WS)
	// Read the pongs: closing a socket with unread bytes resets it, and
	// the server would lose the end of the stream.
	go func() { _, _ = io.Copy(io.Discard, ws) }()
	var wg sync.WaitGroup
	var want int
	for i := range 8 {
		want += 200 * 1000
		wg.Add(2)
		go func() {
			defer wg.Done()
			for range 200 {
				_, _ = ws.Write(bytes.Repeat([]byte{byte('a' + i)}, 1000))
			}
		}()
		go func() {
			defer wg.Done()
			for range 200 {
				_ = ws.Ping([]byte("12345678"))
			}
		}()
	}
	wg.Wait()
	c.Close()
	select {
	case b := <-got:
		if len(b) != want {
			t.Fatalf("the server read %d bytes, want %d", len(b), want)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the server did not see the close")
	}
}

// The agent's TCP_USER_TIMEOUT reaches the TCP socket under its link,
// to a plain-HTTP hub and under the outer TLS of an https one.
func TestSetUserTimeout(t *testing.T) {
	t.Parallel()
	for _, https := range []bool{false, true} {
		t.Run(map[bool]string{false: "http", true: "https"}[https], func(t *testing.T) {
			t.Parallel()
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				c, err := Accept(w, r)
				if err != nil {
					return
				}
				defer c.Close()
				_, _ = io.Copy(io.Discard, c)
			})
			srv := httptest.NewUnstartedServer(h)
			if https {
				srv.StartTLS()
			} else {
				srv.Start()
			}
			defer srv.Close()
			c, err := Dial(context.Background(), srv.URL, false)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := SetUserTimeout(c, 7*time.Second); err != nil {
				t.Fatal(err)
			}
			raw, err := c.(*WS).conn.(*upgraded).Conn.(*net.TCPConn).SyscallConn()
			if err != nil {
				t.Fatal(err)
			}
			var got int
			var gerr error
			if err := raw.Control(func(fd uintptr) { got, gerr = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, tcpUserTimeout) }); err != nil {
				t.Fatal(err)
			}
			if gerr != nil || got != 7000 {
				t.Fatalf("TCP_USER_TIMEOUT = %d ms (%v), want 7000", got, gerr)
			}
		})
	}
}
