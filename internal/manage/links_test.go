package manage_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"lobby/internal/link"
	"lobby/internal/linkproto"
	"lobby/internal/lobby"
	"lobby/internal/manage"
	"lobby/internal/store"
	"lobby/internal/store/sqlite"
)

// fakeHub stands for link.Hub: a fixed list of links, and the cuts asked.
type fakeHub struct {
	mu    sync.Mutex
	links []link.Status
	cuts  []string
}

func (h *fakeHub) Links() []link.Status {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]link.Status(nil), h.links...)
}

func (h *fakeHub) Cut(hostID, why string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.cuts = append(h.cuts, hostID+": "+why)
	return true
}

var (
	t0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	fp = [32]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32}

	adminActor    = manage.Actor{User: &lobby.User{ID: "usr_a", Username: "root", Role: lobby.RoleAdmin}, Remote: "192.0.2.1"}
	operatorActor = manage.Actor{User: &lobby.User{ID: "usr_o", Username: "ops", Role: lobby.RoleOperator}}
	userActor     = manage.Actor{User: &lobby.User{ID: "usr_u", Username: "alice", Role: lobby.RoleUser}}
)

type fixture struct {
	ctx context.Context
	st  store.Store
	hub *fakeHub
	m   *manage.Service
}

func setup(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "lobby.db"), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	hub := &fakeHub{}
	return &fixture{ctx: ctx, st: st, hub: hub, m: &manage.Service{Store: st, Now: func() time.Time { return t0 }, CAFingerprint: fp, Hub: hub}}
}

// wantKind fails unless err is a lobby error of kind k blaming field.
func wantKind(t *testing.T, err error, k lobby.Kind, field string) {
	t.Helper()
	if lobby.ErrorKind(err) != k || lobby.ErrorField(err) != field {
		t.Fatalf("err = %v (kind %s, field %q), want kind %s field %q", err, lobby.ErrorKind(err), lobby.ErrorField(err), k, field)
	}
}

func TestCreateJoinToken(t *testing.T) {
	t.Parallel()
	f := setup(t)
	s, tok, err := f.m.CreateJoinToken(f.ctx, adminActor, manage.JoinTokenSpec{Note: "rack 4"})
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := linkproto.ParseJoinToken(s)
	if err != nil {
		t.Fatalf("parse %q: %v", s, err)
	}
	if parsed.ID != tok.ID || parsed.CAFingerprint != fp || len(parsed.Secret) != 43 {
		t.Fatalf("token %+v, stored %+v", parsed, tok)
	}
	sum := sha256.Sum256([]byte(parsed.Secret))
	got, err := f.st.GetJoinToken(f.ctx, tok.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Hash != hex.EncodeToString(sum[:]) || got.MaxUses != 1 || !got.Expires.Equal(t0.Add(24*time.Hour)) || got.CreatedBy != "root" || got.Note != "rack 4" {
		t.Fatalf("stored %+v", got)
	}
	if st := manage.TokenState(got, t0); st != manage.TokenActive {
		t.Fatalf("state %q", st)
	}
	evs, err := f.st.ListAudit(f.ctx, store.AuditFilter{Query: "token.create"})
	if err != nil || len(evs) != 1 || evs[0].Target != tok.ID || evs[0].Remote != "192.0.2.1" {
		t.Fatalf("audit %+v %v", evs, err)
	}
	if strings.Contains(evs[0].Detail, parsed.Secret) || strings.Contains(evs[0].Detail, got.Hash) {
		t.Fatalf("the audit event holds the secret: %q", evs[0].Detail)
	}

	_, tok2, err := f.m.CreateJoinToken(f.ctx, adminActor, manage.JoinTokenSpec{TTL: 30 * 24 * time.Hour, Uses: 10000})
	if err != nil || tok2.MaxUses != 10000 || tok2.ID == tok.ID {
		t.Fatalf("limits: %+v %v", tok2, err)
	}
}

func TestCreateJoinTokenRefused(t *testing.T) {
	t.Parallel()
	f := setup(t)
	tests := []struct {
		name  string
		a     manage.Actor
		spec  manage.JoinTokenSpec
		kind  lobby.Kind
		field string
	}{
		{"operator", operatorActor, manage.JoinTokenSpec{}, lobby.KindForbidden, ""},
		{"user", userActor, manage.JoinTokenSpec{}, lobby.KindForbidden, ""},
		{"anonymous", manage.Actor{}, manage.JoinTokenSpec{}, lobby.KindUnauthorized, ""},
		{"short ttl", adminActor, manage.JoinTokenSpec{TTL: 59 * time.Second}, lobby.KindInvalid, "expires_in"},
		{"long ttl", adminActor, manage.JoinTokenSpec{TTL: 31 * 24 * time.Hour}, lobby.KindInvalid, "expires_in"},
		{"negative ttl", adminActor, manage.JoinTokenSpec{TTL: -time.Hour}, lobby.KindInvalid, "expires_in"},
		{"negative uses", adminActor, manage.JoinTokenSpec{Uses: -1}, lobby.KindInvalid, "uses"},
		{"many uses", adminActor, manage.JoinTokenSpec{Uses: 10001}, lobby.KindInvalid, "uses"},
		{"long note", adminActor, manage.JoinTokenSpec{Note: strings.Repeat("é", 201)}, lobby.KindInvalid, "note"},
		{"two-line note", adminActor, manage.JoinTokenSpec{Note: "a\nb"}, lobby.KindInvalid, "note"},
	}
	for _, tt := range tests {
		_, _, err := f.m.CreateJoinToken(f.ctx, tt.a, tt.spec)
		t.Run(tt.name, func(t *testing.T) { wantKind(t, err, tt.kind, tt.field) })
	}
	noCA := *f.m
	noCA.CAFingerprint = [32]byte{}
	_, _, err := noCA.CreateJoinToken(f.ctx, adminActor, manage.JoinTokenSpec{})
	wantKind(t, err, lobby.KindInternal, "")
	if ts, err := f.st.ListJoinTokens(f.ctx, store.ListOptions{}); err != nil || len(ts) != 0 {
		t.Fatalf("refused creates stored %d tokens (%v)", len(ts), err)
	}
}

func TestParseTokenTTL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 24 * time.Hour, true},
		{"24h", 24 * time.Hour, true},
		{" 90m ", 90 * time.Minute, true},
		{"1m", time.Minute, true},
		{"7d", 7 * 24 * time.Hour, true},
		{"30d", 30 * 24 * time.Hour, true},
		{"720h", 720 * time.Hour, true},
		{"31d", 0, false},
		{"0d", 0, false},
		{"99999999999d", 0, false},
		{"721h", 0, false},
		{"30s", 0, false},
		{"-1h", 0, false},
		{"tomorrow", 0, false},
		{"1.5d", 0, false},
	}
	for _, tt := range tests {
		got, err := manage.ParseTokenTTL(tt.in)
		if tt.ok && (err != nil || got != tt.want) {
			t.Errorf("ParseTokenTTL(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
		if !tt.ok && lobby.ErrorField(err) != "expires_in" {
			t.Errorf("ParseTokenTTL(%q) = %v, %v; want an error about expires_in", tt.in, got, err)
		}
	}
}

func TestJoinTokenListAndRevoke(t *testing.T) {
	t.Parallel()
	f := setup(t)
	_, tok, err := f.m.CreateJoinToken(f.ctx, adminActor, manage.JoinTokenSpec{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.m.ListJoinTokens(f.ctx, operatorActor, store.ListOptions{})
	wantKind(t, err, lobby.KindForbidden, "")
	wantKind(t, f.m.RevokeJoinToken(f.ctx, operatorActor, tok.ID), lobby.KindForbidden, "")
	wantKind(t, f.m.RevokeJoinToken(f.ctx, adminActor, "jtk_nope"), lobby.KindNotFound, "")

	if err := f.m.RevokeJoinToken(f.ctx, adminActor, tok.ID); err != nil {
		t.Fatal(err)
	}
	ts, err := f.m.ListJoinTokens(f.ctx, adminActor, store.ListOptions{})
	if err != nil || len(ts) != 1 || !ts[0].Revoked || manage.TokenState(&ts[0], t0) != manage.TokenRevoked {
		t.Fatalf("list %+v %v", ts, err)
	}
	if evs, _ := f.st.ListAudit(f.ctx, store.AuditFilter{Query: "token.revoke"}); len(evs) != 1 || evs[0].Target != tok.ID {
		t.Fatalf("audit %+v", evs)
	}
}

func TestTokenState(t *testing.T) {
	t.Parallel()
	tok := store.JoinToken{Expires: t0, MaxUses: 2, Uses: 1}
	for _, tt := range []struct {
		edit func(*store.JoinToken)
		now  time.Time
		want string
	}{
		{func(*store.JoinToken) {}, t0.Add(-time.Second), manage.TokenActive},
		{func(*store.JoinToken) {}, t0, manage.TokenExpired},
		{func(t *store.JoinToken) { t.Uses = 2 }, t0.Add(-time.Second), manage.TokenUsedUp},
		{func(t *store.JoinToken) { t.Revoked = true }, t0.Add(time.Hour), manage.TokenRevoked},
	} {
		c := tok
		tt.edit(&c)
		if got := manage.TokenState(&c, tt.now); got != tt.want {
			t.Errorf("TokenState(%+v, %v) = %q, want %q", c, tt.now, got, tt.want)
		}
	}
}

// addHost stores a joined host (with a certificate serial) and returns it.
func (f *fixture) addHost(t *testing.T, name, serial string) *lobby.Host {
	t.Helper()
	h := &lobby.Host{Name: name, Provider: "local", State: lobby.HostUp, CertSerial: serial}
	if err := f.st.CreateHost(f.ctx, h); err != nil {
		t.Fatal(err)
	}
	return h
}

func TestRevokeHost(t *testing.T) {
	t.Parallel()
	f := setup(t)
	h := f.addHost(t, "alpha", "0abc")
	_, err := f.m.RevokeHost(f.ctx, operatorActor, "alpha")
	wantKind(t, err, lobby.KindForbidden, "")
	_, err = f.m.RevokeHost(f.ctx, adminActor, "nope")
	wantKind(t, err, lobby.KindNotFound, "")

	got, err := f.m.RevokeHost(f.ctx, adminActor, "alpha")
	if err != nil {
		t.Fatal(err)
	}
	if !got.Revoked || got.State != lobby.HostDown || got.ID != h.ID {
		t.Fatalf("revoked host %+v", got)
	}
	if len(f.hub.cuts) != 1 || f.hub.cuts[0] != h.ID+": the host's certificate was revoked" {
		t.Fatalf("cuts %q", f.hub.cuts)
	}
	if evs, _ := f.st.ListAudit(f.ctx, store.AuditFilter{Query: "host.revoke"}); len(evs) != 1 || evs[0].Target != h.ID {
		t.Fatalf("audit %+v", evs)
	}
	// By ID too; the in-process agent's host has no certificate.
	if _, err := f.m.RevokeHost(f.ctx, adminActor, h.ID); err != nil {
		t.Fatal(err)
	}
	local := &lobby.Host{Name: "node", Provider: "local", State: lobby.HostUp}
	if err := f.st.UpsertHost(f.ctx, local); err != nil {
		t.Fatal(err)
	}
	_, err = f.m.RevokeHost(f.ctx, adminActor, "node")
	wantKind(t, err, lobby.KindConflict, "")
}

func TestRemoveHost(t *testing.T) {
	t.Parallel()
	f := setup(t)
	linked := f.addHost(t, "linked", "01")
	busy := f.addHost(t, "busy", "02")
	idle := f.addHost(t, "idle", "03")
	f.hub.links = []link.Status{
		{Kind: "leaf", State: "up", HostID: linked.ID, Peer: "linked"},
		{Kind: "leaf", State: "refused", HostID: idle.ID, Peer: "idle"},
	}
	if err := f.st.CreateDesktop(f.ctx, &lobby.Desktop{Name: "d1", HostID: busy.ID, Power: lobby.PowerRunning, ConsoleKind: "vnc", Tags: []string{}}); err != nil {
		t.Fatal(err)
	}
	wantKind(t, f.m.RemoveHost(f.ctx, operatorActor, "idle"), lobby.KindForbidden, "")
	wantKind(t, f.m.RemoveHost(f.ctx, adminActor, "nope"), lobby.KindNotFound, "")
	err := f.m.RemoveHost(f.ctx, adminActor, "linked")
	wantKind(t, err, lobby.KindConflict, "")
	if !strings.Contains(err.Error(), "revoke it first") {
		t.Errorf("linked: %v", err)
	}
	err = f.m.RemoveHost(f.ctx, adminActor, busy.ID)
	wantKind(t, err, lobby.KindConflict, "")
	if !strings.Contains(err.Error(), "delete its desktops first") {
		t.Errorf("busy: %v", err)
	}
	if err := f.m.RemoveHost(f.ctx, adminActor, "idle"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.GetHost(f.ctx, idle.ID); err == nil {
		t.Fatal("the host is still stored")
	}
	if evs, _ := f.st.ListAudit(f.ctx, store.AuditFilter{Query: "host.remove"}); len(evs) != 1 || evs[0].Target != idle.ID {
		t.Fatalf("audit %+v", evs)
	}

	// A host linked to another node, whose node link is up, is refused
	// too; once that node's link is down, its record goes.
	far := f.addHost(t, "far", "04")
	if err := f.st.SetHostState(f.ctx, far.ID, lobby.HostUp, 2, time.Now()); err != nil {
		t.Fatal(err)
	}
	f.hub.links = append(f.hub.links, link.Status{Kind: "node", State: "up", SiteID: 1, Peer: "node-b", PeerSiteID: 2})
	err = f.m.RemoveHost(f.ctx, adminActor, "far")
	wantKind(t, err, lobby.KindConflict, "")
	if !strings.Contains(err.Error(), "linked to node node-b") {
		t.Errorf("far: %v", err)
	}
	f.hub.links[len(f.hub.links)-1].State = "connecting"
	if err := f.m.RemoveHost(f.ctx, adminActor, "far"); err != nil {
		t.Fatalf("far, its node's link down: %v", err)
	}

	// Without a hub (a node with no links), nothing is linked.
	alone := *f.m
	alone.Hub = nil
	if err := alone.RemoveHost(f.ctx, adminActor, "linked"); err != nil {
		t.Fatal(err)
	}
}

func TestLinks(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.hub.links = []link.Status{{Kind: "leaf", State: "up", Peer: "alpha", HostID: "hst_1"}}
	ls, err := f.m.Links(f.ctx, operatorActor)
	if err != nil || len(ls) != 1 || ls[0].Peer != "alpha" {
		t.Fatalf("links %+v %v", ls, err)
	}
	_, err = f.m.Links(f.ctx, userActor)
	wantKind(t, err, lobby.KindForbidden, "")
	alone := *f.m
	alone.Hub = nil
	if ls, err := alone.Links(f.ctx, operatorActor); err != nil || ls == nil || len(ls) != 0 {
		t.Fatalf("no hub: %+v %v", ls, err)
	}
}
