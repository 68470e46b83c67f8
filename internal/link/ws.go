package link

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // RFC 6455 fixes SHA-1 for Sec-WebSocket-Accept; it is not a security boundary
	"crypto/subtle"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"lobby/internal/linkproto"
)

// A link's outer transport is a WebSocket (RFC 6455) that carries the
// inner TLS bytes in binary frames. It is framed here rather than with
// the gateway's WebSocket library because a link is a long-lived byte
// pipe whose costs add up across thousands of hosts: a write is one frame
// and one write(2) whatever its size (the library masks a client's frames
// through a 4 KiB buffer, one write(2) per 4 KiB); reads and writes carry
// no per-call context; and the ping that proves a link alive is a
// WebSocket control frame, outside the inner TLS and the multiplexer, so
// that it costs one small write and one small read and wakes nothing but
// the link's reader.

// wsGUID is RFC 6455's key suffix for Sec-WebSocket-Accept.
const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// WebSocket opcodes.
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA
)

const (
	wsReadBuffer = 4 << 10 // larger reads bypass it; every link has one
	// wsMaxFrame splits a large write into frames, bounding the buffer a
	// write needs. TLS writes records of at most ~16 KiB, so in practice a
	// frame is one record.
	wsMaxFrame = 256 << 10
)

// WS is one side of a link's WebSocket: a net.Conn whose bytes travel in
// binary frames, with pings answered by the reader.
type WS struct {
	conn   net.Conn      // for deadlines, addresses and Close
	r      *readBuffer   // the bytes after the upgrade
	src    *socketReader // what r reads
	w      io.Writer     // where frames are written (conn, or the HTTP client's body)
	client bool          // a client masks its frames (RFC 6455 §5.3)

	// The reader's state: bytes left in the current data frame and its
	// mask.
	left    int64
	masked  bool
	mask    [4]byte
	maskPos int
	bigAt   int64 // lastRead of the last frame that grew the buffer

	rmu        sync.Mutex    // held by Read, so that Close may drain
	peerClosed chan struct{} // closed when the reader saw the peer's close or an error
	peerOnce   sync.Once

	wmu       sync.Mutex
	wbuf      []byte // the frame being written, or the frames held while corked
	corked    int    // cork depth: frames are held until it is back at 0
	sentClose bool

	lastRead atomic.Int64 // unix nanoseconds of the last frame read
	onPong   atomic.Pointer[func(payload []byte)]
	dz       dozeState // see doze.go

	closeOnce sync.Once
	closeErr  error
}

var _ net.Conn = (*WS)(nil)

func newWS(conn net.Conn, r io.Reader, w io.Writer, client bool) *WS {
	ws := &WS{conn: conn, w: w, client: client, peerClosed: make(chan struct{})}
	ws.src = &socketReader{ws: ws, r: r}
	ws.r = newReadBuffer(ws.src, wsReadBuffer)
	ws.dz.wake = make(chan struct{}, 1)
	ws.lastRead.Store(time.Now().UnixNano())
	return ws
}

// LastRead is when the last frame (data or control) arrived.
func (ws *WS) LastRead() time.Time { return time.Unix(0, ws.lastRead.Load()) }

// OnPong sets what to do with each pong's payload; it runs on the reader.
func (ws *WS) OnPong(f func(payload []byte)) { ws.onPong.Store(&f) }

// Ping sends a ping frame; the peer's reader answers it with a pong.
func (ws *WS) Ping(payload []byte) error {
	ws.dz.pinged.Store(true) // a dozing reader stays awake for the pong
	return ws.writeFrame(opPing, payload)
}

// Read reads the payload of binary frames, answering pings and noting
// pongs on the way.
func (ws *WS) Read(p []byte) (int, error) {
	ws.rmu.Lock()
	defer ws.rmu.Unlock()
	n, err := ws.read(p)
	if err != nil {
		ws.peerOnce.Do(func() { close(ws.peerClosed) })
	}
	return n, err
}

func (ws *WS) read(p []byte) (int, error) {
	for ws.left == 0 {
		if ws.r.Buffered() == 0 {
			if ws.lastRead.Load()-ws.bigAt > int64(time.Second) {
				ws.r.shrink() // no large frame for a while
			}
			ws.sleep()
		}
		op, n, err := ws.readHeader()
		if err != nil {
			return 0, err
		}
		switch op {
		case opBinary, opContinuation:
			ws.left = n
			if n > wsReadBuffer {
				ws.r.grow() // a stream's worth of data is coming
				ws.bigAt = ws.lastRead.Load()
			}
		case opPing, opPong, opClose:
			if n > 125 {
				return 0, ws.protocolError("a control frame of %d bytes", n)
			}
			payload := make([]byte, n)
			if _, err := io.ReadFull(ws.r, payload); err != nil {
				return 0, err
			}
			ws.unmask(payload)
			switch op {
			case opPing:
				if err := ws.writeFrame(opPong, payload); err != nil {
					return 0, err
				}
			case opPong:
				if len(payload) > 0 { // an answer, not a heartbeat
					ws.dz.pinged.Store(false)
				}
				if f := ws.onPong.Load(); f != nil {
					(*f)(payload)
				}
			case opClose:
				_ = ws.writeFrame(opClose, payload) // echo it, as RFC 6455 §5.5.1 asks
				return 0, io.EOF
			}
		default:
			return 0, ws.protocolError("opcode %#x: a link carries binary frames only", op)
		}
	}
	if int64(len(p)) > ws.left {
		p = p[:ws.left]
	}
	n, err := ws.r.Read(p)
	ws.unmask(p[:n])
	ws.left -= int64(n)
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// readHeader reads one frame header and sets up its mask.
func (ws *WS) readHeader() (op byte, n int64, err error) {
	var h [14]byte
	if _, err := io.ReadFull(ws.r, h[:2]); err != nil {
		return 0, 0, err
	}
	ws.lastRead.Store(time.Now().UnixNano())
	op, masked := h[0]&0x0f, h[1]&0x80 != 0
	if h[0]&0x70 != 0 {
		return 0, 0, ws.protocolError("reserved bits set (no extension was negotiated)")
	}
	if masked == ws.client {
		// A server must get masked frames, a client unmasked ones.
		return 0, 0, ws.protocolError("masked=%v from the %s", masked, map[bool]string{true: "server", false: "client"}[ws.client])
	}
	extra := 0
	switch h[1] & 0x7f {
	case 126:
		extra = 2
	case 127:
		extra = 8
	}
	if masked {
		extra += 4
	}
	if _, err := io.ReadFull(ws.r, h[2:2+extra]); err != nil {
		return 0, 0, err
	}
	rest := h[2 : 2+extra]
	switch h[1] & 0x7f {
	case 126:
		n, rest = int64(binary.BigEndian.Uint16(rest)), rest[2:]
	case 127:
		u := binary.BigEndian.Uint64(rest)
		if u > 1<<62 {
			return 0, 0, ws.protocolError("a frame of %d bytes", u)
		}
		n, rest = int64(u), rest[8:]
	default:
		n = int64(h[1] & 0x7f)
	}
	ws.masked = masked
	if masked {
		copy(ws.mask[:], rest)
		ws.maskPos = 0
	}
	return op, n, nil
}

func (ws *WS) unmask(b []byte) {
	if !ws.masked {
		return
	}
	ws.maskPos = maskBytes(ws.mask, ws.maskPos, b, b)
}

// maskBytes sets dst to src XORed with the mask starting at pos and
// returns the next position; dst and src are the same slice or do not
// overlap. Consoles stream hundreds of MiB/s through a link, so long runs
// are XORed with the mask repeated over a block, by crypto/subtle's
// vectorized XORBytes (several times faster than a loop of 8-byte words).
func maskBytes(mask [4]byte, pos int, dst, src []byte) int {
	next := (pos + len(src)) & 3
	if len(src) < maskBlock/4 {
		for i, c := range src {
			dst[i] = c ^ mask[(pos+i)&3]
		}
		return next
	}
	var block [maskBlock]byte // mask rotated to pos, repeated
	for i := range 4 {
		block[i] = mask[(pos+i)&3]
	}
	for n := 4; n < maskBlock; n *= 2 {
		copy(block[n:], block[:n])
	}
	for len(src) > 0 {
		n := min(len(src), maskBlock) // a multiple of 4: the next block lines up
		subtle.XORBytes(dst[:n], src[:n], block[:n])
		dst, src = dst[n:], src[n:]
	}
	return next
}

// maskBlock is the repeated mask maskBytes XORs with at once.
const maskBlock = 4 << 10

func (ws *WS) protocolError(format string, args ...any) error {
	_ = ws.conn.Close()
	return fmt.Errorf("link WebSocket: the peer sent %s", fmt.Sprintf(format, args...))
}

// Write sends p in binary frames, each with one write.
func (ws *WS) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		chunk := p[:min(len(p), wsMaxFrame)]
		if err := ws.writeFrame(opBinary, chunk); err != nil {
			return n, err
		}
		n += len(chunk)
		p = p[len(chunk):]
	}
	return n, nil
}

func (ws *WS) writeFrame(op byte, payload []byte) error {
	ws.wmu.Lock()
	defer ws.wmu.Unlock()
	if ws.sentClose {
		if op == opClose {
			return nil
		}
		return net.ErrClosed
	}
	ws.sentClose = op == opClose
	b := ws.wbuf[:0]
	if ws.corked > 0 {
		b = ws.wbuf // after the frames held
	}
	b = append(b, 0x80|op) // FIN: every frame is a whole message
	maskBit := byte(0)
	if ws.client {
		maskBit = 0x80
	}
	switch n := len(payload); {
	case n <= 125:
		b = append(b, maskBit|byte(n))
	case n <= 0xffff:
		b = append(b, maskBit|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, maskBit|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	if ws.client {
		// The key only has to be unpredictable to the page of a browser;
		// links are not browsers, but peers check that it is there.
		var key [4]byte
		_, _ = rand.Read(key[:])
		b = append(b, key[:]...)
		start := len(b)
		b = slices.Grow(b, len(payload))[:start+len(payload)]
		maskBytes(key, 0, b[start:], payload) // copied and masked in one pass
	} else {
		b = append(b, payload...)
	}
	ws.wrote()
	if ws.corked > 0 && len(b) < corkLimit {
		ws.wbuf = b
		return nil
	}
	return ws.flushLocked(b)
}

// corkLimit bounds what a cork holds: past it, frames go out at once.
const corkLimit = 1 << 20

// flushLocked writes b, the frames built in wbuf; the caller holds wmu.
func (ws *WS) flushLocked(b []byte) error {
	if cap(b) <= 2*wsMaxFrame {
		ws.wbuf = b[:0]
	} else {
		ws.wbuf = nil
	}
	_, err := ws.w.Write(b)
	return err
}

// cork holds the frames written from now on until the matching uncork,
// which sends them in one write(2): the TLS records of one write of the
// multiplexer, 16 KiB each, cross the socket together instead of one by
// one (each write on a loopback or a LAN is a trip through the TCP stack).
func (ws *WS) cork() {
	ws.wmu.Lock()
	ws.corked++
	ws.wmu.Unlock()
}

// uncork sends the frames held when the last cork is undone.
func (ws *WS) uncork() error {
	ws.wmu.Lock()
	defer ws.wmu.Unlock()
	ws.corked--
	if ws.corked > 0 || len(ws.wbuf) == 0 {
		return nil
	}
	return ws.flushLocked(ws.wbuf)
}

// closeWait bounds how long Close waits for the peer's close frame.
const closeWait = time.Second

// Close ends the WebSocket with the closing handshake (RFC 6455 §7): it
// sends a close frame and waits, briefly, for the peer's before closing
// the connection. Closing at once would reset the TCP connection if bytes
// of the peer's were still arriving, and the peer could lose the last
// bytes this side wrote (a refusal, a result).
func (ws *WS) Close() error {
	ws.closeOnce.Do(func() {
		ws.dz.closing.Store(true)
		ws.poke()
		_ = ws.conn.SetWriteDeadline(time.Now().Add(closeWait))
		_ = ws.writeFrame(opClose, []byte{0x03, 0xe8}) // 1000: normal closure
		if ws.rmu.TryLock() {
			// Nobody is reading: read up to the peer's close here.
			_ = ws.conn.SetReadDeadline(time.Now().Add(closeWait))
			buf := make([]byte, 4096)
			for {
				if _, err := ws.read(buf); err != nil {
					break
				}
			}
			ws.rmu.Unlock()
		} else {
			select {
			case <-ws.peerClosed:
			case <-time.After(closeWait):
			}
		}
		ws.peerOnce.Do(func() { close(ws.peerClosed) })
		ws.closeErr = ws.conn.Close()
	})
	return ws.closeErr
}

func (ws *WS) LocalAddr() net.Addr                { return ws.conn.LocalAddr() }
func (ws *WS) RemoteAddr() net.Addr               { return ws.conn.RemoteAddr() }
func (ws *WS) SetDeadline(t time.Time) error      { return ws.conn.SetDeadline(t) }
func (ws *WS) SetReadDeadline(t time.Time) error  { return ws.conn.SetReadDeadline(t) }
func (ws *WS) SetWriteDeadline(t time.Time) error { return ws.conn.SetWriteDeadline(t) }

func acceptKey(key string) string {
	h := sha1.Sum([]byte(key + wsGUID)) //nolint:gosec // see the import
	return base64.StdEncoding.EncodeToString(h[:])
}

func headerHas(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// Accept upgrades a request to a link's outer transport. Requests that
// are not link upgrades get an HTTP error saying what was expected.
func Accept(w http.ResponseWriter, r *http.Request) (net.Conn, error) {
	key := r.Header.Get("Sec-WebSocket-Key")
	var problem string
	switch {
	case r.Method != http.MethodGet:
		problem = "a link is a WebSocket upgrade: use GET"
	case !headerHas(r.Header, "Connection", "upgrade") || !headerHas(r.Header, "Upgrade", "websocket"):
		problem = "this is the link endpoint of a Lobby node: it takes WebSocket upgrades from `lobby agent`, not plain requests"
	case r.Header.Get("Sec-WebSocket-Version") != "13":
		problem = "WebSocket version 13 is required"
	case len(key) != 24:
		problem = "a Sec-WebSocket-Key of 16 bytes in base64 is required"
	case !headerHas(r.Header, "Sec-WebSocket-Protocol", linkproto.Subprotocol):
		problem = "not a Lobby link: subprotocol " + linkproto.Subprotocol + " required"
	}
	if problem != "" {
		w.Header().Set("Sec-WebSocket-Version", "13")
		http.Error(w, problem, http.StatusBadRequest)
		return nil, errors.New(problem)
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		http.Error(w, "this listener cannot carry links (the connection cannot be taken over): "+err.Error(), http.StatusInternalServerError)
		return nil, err
	}
	// The server's deadlines for the request do not apply to the link.
	_ = conn.SetDeadline(time.Time{})
	resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Accept: " + acceptKey(key) + "\r\nSec-WebSocket-Protocol: " + linkproto.Subprotocol + "\r\n\r\n"
	if _, err := conn.Write([]byte(resp)); err != nil {
		conn.Close()
		return nil, err
	}
	// Bytes the HTTP server read ahead belong to the link.
	var r0 io.Reader = conn
	if n := brw.Reader.Buffered(); n > 0 {
		ahead, _ := brw.Reader.Peek(n)
		r0 = io.MultiReader(bytes.NewReader(bytes.Clone(ahead)), conn)
	}
	ws := newWS(conn, r0, conn, false)
	if tc, ok := conn.(*net.TCPConn); ok && r0 == io.Reader(conn) {
		// The reader reads the socket itself: it may read it without
		// waiting (see doze.go).
		ws.src.direct, _ = tc.SyscallConn()
	}
	return ws, nil
}

// Dial opens the outer transport to a hub: a WebSocket whose bytes the
// caller wraps in mutual TLS. The outer HTTPS certificate is not checked:
// it may belong to a TLS-terminating balancer, and the hub is
// authenticated by the inner TLS against the pinned cluster CA. With
// secureOnly, a plain-HTTP hub URL is refused. HTTP(S)_PROXY is honoured.
func Dial(ctx context.Context, hub string, secureOnly bool) (net.Conn, error) {
	wsURL, err := LinkURL(hub)
	if err != nil {
		return nil, err
	}
	if secureOnly && strings.HasPrefix(wsURL, "ws:") {
		return nil, fmt.Errorf("hub %s is plain HTTP and this link is secure-only: use its https:// URL", hub)
	}
	u, _ := url.Parse(wsURL)
	u.Scheme = map[string]string{"ws": "http", "wss": "https"}[u.Scheme]
	var raw net.Conn // the TCP connection under it all, for deadlines
	var rawMu sync.Mutex
	d := &net.Dialer{KeepAlive: 15 * time.Second}
	tr := &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err == nil {
				rawMu.Lock()
				raw = c
				rawMu.Unlock()
			}
			return c, err
		},
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}}, //nolint:gosec // see above
		ForceAttemptHTTP2: false,
		TLSNextProto:      map[string]func(string, *tls.Conn) http.RoundTripper{},
	}
	defer tr.CloseIdleConnections()
	var nonce [16]byte
	_, _ = rand.Read(nonce[:])
	key := base64.StdEncoding.EncodeToString(nonce[:])
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("hub %q: %w", hub, err)
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", key)
	req.Header.Set("Sec-WebSocket-Protocol", linkproto.Subprotocol)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return nil, fmt.Errorf("reach hub %s: %w", hub, err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		return nil, fmt.Errorf("hub %s answered %s (%s) instead of a link: is it a Lobby node of a release that has links?", hub, resp.Status, strings.TrimSpace(string(body)))
	}
	rwc, ok := resp.Body.(io.ReadWriteCloser)
	switch {
	case !ok:
		resp.Body.Close()
		return nil, fmt.Errorf("hub %s: the HTTP client cannot take the upgraded connection over", hub)
	case resp.Header.Get("Sec-WebSocket-Accept") != acceptKey(key):
		rwc.Close()
		return nil, fmt.Errorf("hub %s answered the upgrade with a wrong Sec-WebSocket-Accept: something in between is not passing WebSockets through", hub)
	case resp.Header.Get("Sec-WebSocket-Protocol") != linkproto.Subprotocol:
		rwc.Close()
		return nil, fmt.Errorf("hub %s did not accept the %s subprotocol", hub, linkproto.Subprotocol)
	}
	rawMu.Lock()
	c := raw
	rawMu.Unlock()
	if c == nil {
		rwc.Close()
		return nil, fmt.Errorf("hub %s: no connection was dialled", hub)
	}
	return newWS(&upgraded{Conn: c, rwc: rwc}, rwc, rwc, true), nil
}

// upgraded is the client's connection after the upgrade: bytes go through
// the HTTP client's body (which holds what it read ahead, and the outer
// TLS for https hubs); deadlines go to the TCP connection under it.
type upgraded struct {
	net.Conn
	rwc io.ReadWriteCloser
}

func (u *upgraded) Close() error {
	err := u.rwc.Close()
	_ = u.Conn.Close()
	return err
}

// wsOf finds the link WebSocket under a link's TLS connection.
func wsOf(c net.Conn) *WS {
	for {
		switch t := c.(type) {
		case *WS:
			return t
		case *tls.Conn:
			c = t.NetConn()
		default:
			return nil
		}
	}
}

// socketOf finds the TCP socket under a link's outer connection: the
// connection itself, the one under the outer TLS of an https listener, or
// the one under a client's upgraded connection.
func socketOf(c net.Conn) syscall.RawConn {
	for {
		switch t := c.(type) {
		case *tls.Conn:
			c = t.NetConn()
		case *upgraded:
			c = t.Conn
		case syscall.Conn:
			raw, err := t.SyscallConn()
			if err != nil {
				return nil
			}
			return raw
		default:
			return nil
		}
	}
}

// A link proves itself alive both ways without waking the node for every
// link at every interval more than once:
//   - the agent sends a heartbeat (an unsolicited pong, which RFC 6455
//     §5.5.3 allows) every ping interval; the node's reader takes it in
//     without a reply, and the node's sweeper ends a link that was silent
//     for three intervals;
//   - the node pings every RTTEvery intervals (the round trip shown in the
//     link list); the agent ends a link that heard nothing from the node
//     for three of those, and its kernel ends it sooner when heartbeats go
//     unacknowledged (TCP_USER_TIMEOUT, SilentAfter).

// RTTEvery is how many ping intervals the node lets pass between its
// round-trip pings.
const RTTEvery = 10

// SilentAfter is how long a link may go without a sign of its peer: three
// intervals, and no less than 5 s for the kernel's retransmissions.
func SilentAfter(interval time.Duration) time.Duration { return max(3*interval, 5*time.Second) }

// ErrSilent says a link's peer sent nothing for too long.
var ErrSilent = errors.New("the peer sent nothing")

// Heartbeat is the agent's side: it sends a heartbeat every interval
// until done is closed, and returns ErrSilent once the node has sent
// nothing for three of its round-trip pings.
func Heartbeat(c net.Conn, interval time.Duration, done <-chan struct{}) error {
	ws := wsOf(c)
	if ws == nil {
		return nil
	}
	ws.lastRead.Store(time.Now().UnixNano())
	limit := 3 * RTTEvery * interval
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-done:
			return nil
		case now := <-t.C:
			if silent := now.Sub(ws.LastRead()); silent > limit {
				return fmt.Errorf("%w for %s", ErrSilent, silent.Round(time.Millisecond))
			}
			if err := ws.writeFrame(opPong, nil); err != nil {
				return fmt.Errorf("heartbeat: %w", err)
			}
		}
	}
}

// SetUserTimeout makes the kernel end the link's TCP connection when
// bytes sent stay unacknowledged for d (TCP_USER_TIMEOUT), so that a
// leaf finds a dead path as soon as its heartbeats go unanswered.
func SetUserTimeout(c net.Conn, d time.Duration) error {
	ws := wsOf(c)
	if ws == nil {
		return nil
	}
	sock := socketOf(ws.conn)
	if sock == nil {
		return nil
	}
	var serr error
	err := sock.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, tcpUserTimeout, int(d.Milliseconds()))
	})
	return errors.Join(err, serr)
}

// watch is the node's record of one link's liveness (see Hub.sweep).
type watch struct {
	ws       *WS
	interval time.Duration
	base     time.Time
	nextRTT  time.Time
	rtt      atomic.Int64
}

func newWatch(c net.Conn, interval time.Duration) *watch {
	ws := wsOf(c)
	if ws == nil {
		return nil
	}
	now := time.Now()
	w := &watch{ws: ws, interval: interval, base: now,
		// Spread the round trips of links that came up together.
		nextRTT: now.Add(time.Duration(mrand.Int64N(int64(RTTEvery * interval))))}
	ws.OnPong(func(p []byte) {
		if len(p) == 8 { // a heartbeat has no payload
			sent := time.Duration(binary.BigEndian.Uint64(p))
			if rtt := time.Since(w.base) - sent; rtt >= 0 {
				w.rtt.Store(int64(rtt))
			}
		}
	})
	ws.lastRead.Store(now.UnixNano())
	return w
}

// RTT is the latest round trip (zero before the first).
func (w *watch) RTT() time.Duration { return time.Duration(w.rtt.Load()) }

// checkAt is when check has something to do: the link may be silent for
// too long, or its round-trip ping is due. Only the sweeper calls it.
func (w *watch) checkAt() time.Time {
	at := w.ws.LastRead().Add(3 * w.interval)
	if w.nextRTT.Before(at) {
		return w.nextRTT
	}
	return at
}

// check reports a silent link, and sends the round-trip ping when due.
func (w *watch) check(now time.Time) error {
	if silent := now.Sub(w.ws.LastRead()); silent > 3*w.interval {
		return fmt.Errorf("%w for %s (its ping interval is %s)", ErrSilent, silent.Round(time.Millisecond), w.interval)
	}
	if now.After(w.nextRTT) {
		w.nextRTT = now.Add(RTTEvery * w.interval)
		var p [8]byte
		binary.BigEndian.PutUint64(p[:], uint64(now.Sub(w.base)))
		// Not on the sweeper: a write can wait behind a console's.
		go func() { _ = w.ws.Ping(p[:]) }()
	}
	return nil
}

// tcpUserTimeout is TCP_USER_TIMEOUT (linux/tcp.h).
const tcpUserTimeout = 0x12
