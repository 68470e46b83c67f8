package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"lobby/internal/lobby"
)

// newServer starts an httptest server on h and a client for it.
func newServer(t testing.TB, h http.HandlerFunc, opts ...Option) (*httptest.Server, *Client) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := New(srv.URL, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return srv, c
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func TestAPIErrorKinds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		kind   lobby.Kind
		status int
	}{
		{lobby.KindInvalid, 400},
		{lobby.KindUnauthorized, 401},
		{lobby.KindForbidden, 403},
		{lobby.KindNotFound, 404},
		{lobby.KindConflict, 409},
		{lobby.KindTooLarge, 413},
		{lobby.KindUnavailable, 503},
		{lobby.KindMaintenance, 503},
		{lobby.KindInternal, 500},
	}
	for _, tt := range tests {
		t.Run(string(tt.kind), func(t *testing.T) {
			t.Parallel()
			_, c := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				writeJSON(w, tt.status, map[string]any{"error": map[string]string{"code": string(tt.kind), "message": "said " + string(tt.kind)}})
			})
			_, err := c.GetPool(context.Background(), "demo")
			var le *lobby.Error
			if !errors.As(err, &le) {
				t.Fatalf("err = %v (%T), want *lobby.Error", err, err)
			}
			if le.Kind != tt.kind || le.Message != "said "+string(tt.kind) {
				t.Errorf("got %+v", le)
			}
		})
	}
}

func TestNotLobby(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		status int
		ctype  string
		body   string
	}{
		{"html page", 200, "text/html", "<html>hello</html>"},
		{"proxy error", 502, "text/html", "<h1>Bad Gateway</h1>"},
		{"json without error", 404, "application/json", `{"message":"nope"}`},
		{"empty 200", 200, "application/json", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, c := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tt.ctype)
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			})
			_, err := c.Me(context.Background())
			if !errors.Is(err, ErrNotLobby) {
				t.Fatalf("err = %v, want ErrNotLobby", err)
			}
			if !strings.Contains(err.Error(), "instead of Lobby's JSON") {
				t.Errorf("message %q", err)
			}
		})
	}
}

func TestUnreachable(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	c, err := New(url)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Me(context.Background())
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("err = %v, want ErrUnreachable", err)
	}
	want := "cannot reach Lobby at " + url + ": "
	if msg := err.Error(); !strings.HasPrefix(msg, want) || !strings.HasSuffix(msg, "is `lobby server` running?") {
		t.Errorf("message %q", msg)
	}
}

func TestCancelledIsNotUnreachable(t *testing.T) {
	t.Parallel()
	_, c := newServer(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Me(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
}

func TestRequestShape(t *testing.T) {
	t.Parallel()
	_, c := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if got := r.Header.Get("Authorization"); got != "Bearer tok" {
			writeJSON(w, 401, map[string]any{"error": map[string]string{"code": "unauthorized", "message": "bad token " + got}})
			return
		}
		switch r.Method + " " + r.URL.Path {
		case "POST /api/v1/pools":
			var spec PoolSpec
			if err := json.NewDecoder(r.Body).Decode(&spec); err != nil || r.Header.Get("Content-Type") != "application/json" {
				writeJSON(w, 400, map[string]any{"error": map[string]string{"code": "invalid", "message": "bad body"}})
				return
			}
			writeJSON(w, 201, lobby.Pool{ID: "pool_1", Name: spec.Name, MaxSize: spec.MaxSize})
		case "GET /api/v1/desktops":
			q := r.URL.Query()
			if q.Get("pool") != "demo" || q.Get("assigned_to") != "u 1" {
				t.Errorf("query %v", q)
			}
			// Two pages: the cursor comes back as ?after=.
			if q.Get("after") == "" {
				writeJSON(w, 200, map[string]any{"items": []lobby.Desktop{{ID: "d1"}}, "next": "c1"})
				return
			}
			writeJSON(w, 200, map[string]any{"items": []lobby.Desktop{{ID: "d2"}}, "next": ""})
		case "GET /api/v1/pools/a b":
			writeJSON(w, 200, map[string]any{"id": "pool_2", "name": "a b", "counts": map[string]int{"total": 3, "free": 1}})
		default:
			http.Error(w, "no route "+r.URL.Path, 404)
		}
	}, WithToken("tok"))
	ctx := context.Background()

	p, err := c.CreatePool(ctx, PoolSpec{Name: "demo", MaxSize: 5})
	if err != nil || p.ID != "pool_1" || p.MaxSize != 5 {
		t.Fatalf("CreatePool = %+v, %v", p, err)
	}
	ds, err := All(ctx, func(ctx context.Context, o ListOptions) (*Page[lobby.Desktop], error) {
		return c.ListDesktops(ctx, DesktopFilter{Pool: "demo", AssignedTo: "u 1"}, o)
	})
	if err != nil || len(ds) != 2 || ds[1].ID != "d2" {
		t.Fatalf("All desktops = %+v, %v", ds, err)
	}
	pc, err := c.GetPool(ctx, "a b")
	if err != nil || pc.Counts == nil || pc.Counts.Total != 3 || pc.Name != "a b" {
		t.Fatalf("GetPool = %+v, %v", pc, err)
	}
	if _, err := c.GetPool(ctx, ""); lobby.ErrorKind(err) != lobby.KindInvalid {
		t.Errorf("GetPool(\"\") err = %v", err)
	}
}

func TestBodyLimit(t *testing.T) {
	t.Parallel()
	_, c := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"items":[],"next":"`)
		io.Copy(w, io.LimitReader(zeros{}, MaxBody))
		io.WriteString(w, `"}`)
	})
	_, err := c.ListHosts(context.Background(), ListOptions{})
	if err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("err = %v", err)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = '0'
	}
	return len(p), nil
}

func TestJobDecoding(t *testing.T) {
	t.Parallel()
	var j Job
	in := `{"id":42,"kind":"power","state":"retryable","attempt":2,"args":{"op":"start"},"errors":["boom",{"attempt":2,"error":"bang"}],"created":"2026-01-02T03:04:05Z","finalized":null}`
	if err := json.Unmarshal([]byte(in), &j); err != nil {
		t.Fatal(err)
	}
	if j.ID != "42" || len(j.Errors) != 2 || j.Errors[0].Error != "boom" || j.Errors[1].Attempt != 2 || j.Finalized != nil {
		t.Errorf("job = %+v", j)
	}
}

func TestNewErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		url  string
		opts []Option
	}{
		{"", nil},
		{"ftp://x", nil},
		{"http://", nil},
		{"https://x", []Option{WithFingerprint("nope")}},
		{"https://x", []Option{WithCAFile(filepath.Join(t.TempDir(), "missing.pem"))}},
	} {
		if _, err := New(tt.url, tt.opts...); err == nil {
			t.Errorf("New(%q) succeeded", tt.url)
		}
	}
	c, err := New("lobby.example.com:8443/prefix/?x=1")
	if err != nil || c.BaseURL() != "https://lobby.example.com:8443/prefix" {
		t.Errorf("BaseURL = %q, %v", c.BaseURL(), err)
	}
}

func TestDialConsole(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /prefix/gateway/vnc", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("ticket") != "T1" {
			writeJSON(w, 404, map[string]any{"error": map[string]string{"code": "not_found", "message": "ticket used or expired"}})
			return
		}
		ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{"binary"}})
		if err != nil {
			return
		}
		if ws.Subprotocol() != "binary" {
			ws.Close(websocket.StatusProtocolError, "want binary")
			return
		}
		conn := websocket.NetConn(r.Context(), ws, websocket.MessageBinary)
		defer conn.Close()
		fmt.Fprint(conn, "RFB 003.008\n")
		io.Copy(conn, conn) // echo
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	c, err := New(srv.URL + "/prefix/")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	conn, err := c.DialConsole(ctx, "/gateway/vnc?ticket=T1")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	buf := make([]byte, 12)
	if _, err := io.ReadFull(conn, buf); err != nil || string(buf) != "RFB 003.008\n" {
		t.Fatalf("read %q, %v", buf, err)
	}
	big := strings.Repeat("x", 100000) // above websocket's default read limit
	go conn.Write([]byte(big))
	got := make([]byte, len(big))
	if _, err := io.ReadFull(conn, got); err != nil || string(got) != big {
		t.Fatalf("echo: %v", err)
	}

	_, err = c.DialConsole(ctx, "/gateway/vnc?ticket=used")
	if lobby.ErrorKind(err) != lobby.KindNotFound {
		t.Errorf("used ticket: err = %v", err)
	}
	if _, err := c.DialConsole(ctx, "gopher://x/y"); err == nil {
		t.Error("gopher URL accepted")
	}
}
