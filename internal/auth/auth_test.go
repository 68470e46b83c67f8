package auth

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"lobby/internal/lobby"
	"lobby/internal/store"
	"lobby/internal/store/pgtest"
	"lobby/internal/store/postgres"
	"lobby/internal/store/sqlite"
)

// cheap parameters keep the tests fast; the encoding carries them.
var cheap = Params{Memory: 64, Time: 1, Threads: 1}

func TestHashVerify(t *testing.T) {
	t.Parallel()
	h := NewHasher(cheap, 2)
	ctx := context.Background()
	enc, err := h.Hash(ctx, "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(enc, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("encoding %q", enc)
	}
	enc2, _ := h.Hash(ctx, "correct horse")
	if enc == enc2 {
		t.Fatal("two hashes of one password are equal: the salt is not random")
	}
	// A hasher with other parameters still verifies old hashes.
	other := NewHasher(DefaultParams, 1)
	tests := []struct {
		pw   string
		want bool
	}{{"correct horse", true}, {"correct horsf", false}, {"", false}}
	for _, tt := range tests {
		ok, err := other.Verify(ctx, tt.pw, enc)
		if err != nil || ok != tt.want {
			t.Errorf("Verify(%q) = %v, %v; want %v", tt.pw, ok, err, tt.want)
		}
	}
	for _, bad := range []string{"", "plain", "$argon2id$v=19$m=x$a$b", "$argon2i$v=19$m=64,t=1,p=1$c2FsdA$aGFzaA", "$argon2id$v=19$m=64,t=1,p=1$!!$aGFzaGhhc2hoYXNoaGFzaA"} {
		if _, err := h.Verify(ctx, "x", bad); err == nil {
			t.Errorf("Verify accepted the malformed hash %q", bad)
		}
	}
}

// TestParamsSet checks the --password-hash option: OWASP's settings and
// stronger ones are taken, weaker or malformed ones refused with the fix.
func TestParamsSet(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    Params
		wantErr string
	}{
		{"m=7168,t=5,p=1", Params{7168, 5, 1}, ""},
		{"m=19456,t=2,p=1", Params{19456, 2, 1}, ""},
		{"m=47104,t=1,p=2", Params{47104, 1, 2}, ""},
		{"m=65536,t=3,p=4", Params{65536, 3, 4}, ""},
		{"m=19456,t=1,p=1", Params{}, "weaker than OWASP's guidance: use one of m=47104,t=1,p=1, m=19456,t=2,p=1"},
		{"m=4096,t=20,p=1", Params{}, "weaker than OWASP's guidance"},
		{"m=7168,t=0,p=1", Params{}, "passes (t) and lanes (p) must be at least 1"},
		{"m=7168,t=5,p=0", Params{}, "passes (t) and lanes (p) must be at least 1"},
		{"m=8388608,t=1,p=1", Params{}, "more than 4 GiB"},
		{"m=7168,t=5", Params{}, "write them as m=KiB,t=passes,p=lanes, such as m=7168,t=5,p=1"},
		{"m=7168,t=5,p=1x", Params{}, "is not argon2id parameters"},
		{"19MiB", Params{}, "is not argon2id parameters"},
	}
	for _, tt := range tests {
		var p Params
		err := p.Set(tt.in)
		switch {
		case tt.wantErr == "" && (err != nil || p != tt.want):
			t.Errorf("Set(%q) = %v, %v; want %v", tt.in, p, err, tt.want)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("Set(%q) error %v; want one containing %q", tt.in, err, tt.wantErr)
		case tt.wantErr != "" && p != (Params{}):
			t.Errorf("Set(%q) failed but changed the parameters to %v", tt.in, p)
		}
	}
	for _, p := range OWASPParams {
		if err := p.Check(); err != nil {
			t.Errorf("OWASP's %s refused: %v", p, err)
		}
	}
}

// TestFIFOServesInArrivalOrder checks that waiters for a hashing slot are
// served first come, first served, so nobody starves in a sign-in storm.
func TestFIFOServesInArrivalOrder(t *testing.T) {
	t.Parallel()
	f := newFIFO(1)
	ctx := context.Background()
	if err := f.acquire(ctx); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var order []int
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f.acquire(ctx); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
			f.release()
		}()
		// Wait until waiter i is queued before starting the next.
		for {
			f.mu.Lock()
			n := len(f.waiters)
			f.mu.Unlock()
			if n == i+1 {
				break
			}
			time.Sleep(time.Millisecond)
		}
	}
	f.release()
	wg.Wait()
	for i, got := range order {
		if got != i {
			t.Fatalf("served in order %v", order)
		}
	}
}

func TestFIFOCancelledWaiterLeaves(t *testing.T) {
	t.Parallel()
	f := newFIFO(1)
	if err := f.acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := f.acquire(ctx); err == nil {
		t.Fatal("acquired a taken slot")
	}
	f.release()
	// The slot is free again: the cancelled waiter did not keep it.
	ctx2, cancel2 := context.WithTimeout(context.Background(), time.Second)
	defer cancel2()
	if err := f.acquire(ctx2); err != nil {
		t.Fatalf("slot leaked by a cancelled waiter: %v", err)
	}
}

func TestSecretsAreHashedAndPrefixed(t *testing.T) {
	t.Parallel()
	s1, h1 := newSecret(tokenPrefix)
	s2, _ := newSecret(tokenPrefix)
	if !strings.HasPrefix(s1, "lby_") || s1 == s2 || len(s1) < 40 {
		t.Fatalf("secret %q", s1)
	}
	if h1 != hashSecret(s1) || strings.Contains(h1, s1) || len(h1) != 64 {
		t.Fatalf("hash %q of %q", h1, s1)
	}
	pw := RandomPassword()
	if len(pw) != 20 || strings.ContainsAny(pw, "0O1lI") {
		t.Fatalf("password %q", pw)
	}
}

// stores runs fn on SQLite and on PostgreSQL; second opens another
// handle on the same database, as another node would.
func stores(t *testing.T, fn func(t *testing.T, st store.Store, second func() store.Store)) {
	quiet := slog.New(slog.DiscardHandler)
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "lobby.db")
		open := func() store.Store {
			st, err := sqlite.Open(t.Context(), path, quiet)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		}
		fn(t, open(), open)
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		url := pgtest.URL(t)
		open := func() store.Store {
			st, err := postgres.Open(t.Context(), url, quiet)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		}
		fn(t, open(), open)
	})
}

// TestTokenCacheForgetsRevoked: Authenticate caches accepted tokens, and
// every way of revoking one through this node's store (sign-out, revoking
// a user's tokens, disabling or deleting the user, inside a transaction
// or not) takes effect on the next request, within the cache's TTL.
func TestTokenCacheForgetsRevoked(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, st store.Store, second func() store.Store) {
		ctx := t.Context()
		s, err := New(ctx, st, NewHasher(cheap, 1), slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		if s.tokens == nil {
			t.Fatal("no token cache with this store")
		}
		now := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
		s.Now = func() time.Time { return now }
		n := 0
		signIn := func(t *testing.T) (*lobby.User, string, *store.Token) {
			t.Helper()
			n++
			u := &lobby.User{Username: fmt.Sprintf("u%d", n), Role: lobby.RoleUser, Groups: []string{"g"}}
			if err := st.CreateUser(ctx, u, "x"); err != nil {
				t.Fatal(err)
			}
			secret, tok, err := s.IssueToken(ctx, u.ID, "login", time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			// Twice: the second answer comes from the cache.
			for range 2 {
				if _, _, err := s.Authenticate(ctx, secret); err != nil {
					t.Fatal(err)
				}
			}
			return u, secret, tok
		}
		refused := func(t *testing.T, secret string) {
			t.Helper()
			if _, _, err := s.Authenticate(ctx, secret); lobby.ErrorKind(err) != lobby.KindUnauthorized && lobby.ErrorKind(err) != lobby.KindForbidden {
				t.Fatalf("Authenticate after revocation: %v, want refused", err)
			}
		}
		revocations := map[string]func(u *lobby.User, tok *store.Token) error{
			"sign-out": func(u *lobby.User, tok *store.Token) error { return s.RevokeToken(ctx, tok) },
			"store revoke": func(u *lobby.User, tok *store.Token) error {
				return st.RevokeToken(ctx, tok.ID)
			},
			"revoke user tokens in a transaction": func(u *lobby.User, tok *store.Token) error {
				return st.InTx(ctx, func(q store.Queries) error { return q.RevokeUserTokens(ctx, u.ID) })
			},
			"disable": func(u *lobby.User, tok *store.Token) error {
				u.Disabled = true
				return st.InTx(ctx, func(q store.Queries) error { return q.UpdateUser(ctx, u) })
			},
			"delete": func(u *lobby.User, tok *store.Token) error { return st.DeleteUser(ctx, u.ID) },
		}
		for name, revoke := range revocations {
			u, secret, tok := signIn(t)
			if err := revoke(u, tok); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			refused(t, secret)
		}
		// A revocation by another node is seen once the entry is older
		// than the TTL, and not before.
		_, secret, tok := signIn(t)
		if err := second().RevokeToken(ctx, tok.ID); err != nil {
			t.Fatal(err)
		}
		now = now.Add(TokenCacheTTL - time.Millisecond)
		if _, _, err := s.Authenticate(ctx, secret); err != nil {
			t.Fatalf("within the TTL, a revocation elsewhere is not seen yet (documented): %v", err)
		}
		now = now.Add(time.Millisecond)
		refused(t, secret)
		// Expiry is checked on every hit.
		_, secret2, _ := signIn(t)
		now = now.Add(time.Hour)
		refused(t, secret2)
	})
}

// TestMaintenanceAdmitsAdministratorsOnly: in maintenance mode a user
// and an operator can neither sign in nor use a token they hold (cached
// or not), with the reason and what to do; an administrator can; out of
// maintenance mode, everyone again.
func TestMaintenanceAdmitsAdministratorsOnly(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "lobby.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	h := NewHasher(cheap, 1)
	s, err := New(ctx, st, h, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	why := ""
	s.Maintenance = func() string { return why }
	tokens := map[lobby.Role]string{}
	for _, role := range []lobby.Role{lobby.RoleUser, lobby.RoleOperator, lobby.RoleAdmin} {
		hash, _ := h.Hash(ctx, "pw-"+string(role))
		if err := st.CreateUser(ctx, &lobby.User{Username: string(role), Role: role}, hash); err != nil {
			t.Fatal(err)
		}
		secret, _, _, err := s.Login(ctx, string(role), "pw-"+string(role))
		if err != nil {
			t.Fatal(err)
		}
		tokens[role] = secret
		if _, _, err := s.Authenticate(ctx, secret); err != nil { // now cached
			t.Fatal(err)
		}
	}

	why = "database schema 10, this node expects 12: run `lobby admin db migrate`"
	for _, role := range []lobby.Role{lobby.RoleUser, lobby.RoleOperator} {
		_, _, _, err := s.Login(ctx, string(role), "pw-"+string(role))
		if lobby.ErrorKind(err) != lobby.KindMaintenance || !strings.Contains(err.Error(), why) || !strings.Contains(err.Error(), "only administrators") {
			t.Errorf("%s signs in during maintenance: %v", role, err)
		}
		if u, tok, err := s.Authenticate(ctx, tokens[role]); lobby.ErrorKind(err) != lobby.KindMaintenance || u != nil || tok != nil {
			t.Errorf("%s's token during maintenance: %v, %v, %v", role, u, tok, err)
		}
	}
	// A wrong password is still just that, not a maintenance answer that
	// would tell which accounts exist.
	if _, _, _, err := s.Login(ctx, "user", "wrong"); lobby.ErrorKind(err) != lobby.KindUnauthorized {
		t.Errorf("wrong password during maintenance: %v", err)
	}
	if _, _, _, err := s.Login(ctx, "admin", "pw-admin"); err != nil {
		t.Errorf("administrator signs in during maintenance: %v", err)
	}
	if _, _, err := s.Authenticate(ctx, tokens[lobby.RoleAdmin]); err != nil {
		t.Errorf("administrator's token during maintenance: %v", err)
	}

	why = ""
	if _, _, err := s.Authenticate(ctx, tokens[lobby.RoleUser]); err != nil {
		t.Errorf("user's token after maintenance: %v", err)
	}
	if _, _, _, err := s.Login(ctx, "user", "pw-user"); err != nil {
		t.Errorf("user signs in after maintenance: %v", err)
	}
}
