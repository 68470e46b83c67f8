// Package auth signs people in: argon2id password hashes, API bearer
// tokens (random, stored hashed, expiring, revocable), console tickets, and
// the first administrator of a new store.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"lobby/internal/lobby"
	"lobby/internal/store"
)

// Token and ticket prefixes make leaked secrets easy to recognise.
const (
	tokenPrefix  = "lby_"
	ticketPrefix = "tkt_"
)

// Defaults.
const (
	DefaultTokenTTL  = 12 * time.Hour
	DefaultTicketTTL = 30 * time.Second
)

// Service authenticates users and issues tokens and tickets.
type Service struct {
	Store     store.Store
	Hasher    *Hasher
	Logger    *slog.Logger
	Now       func() time.Time
	TokenTTL  time.Duration
	TicketTTL time.Duration
	// Maintenance says why the node is in maintenance mode, "" when it is
	// not; nil means never. In maintenance mode only administrators sign
	// in and use their tokens.
	Maintenance func() string

	dummyHash string      // verified against for unknown users, so timing does not reveal them
	tokens    *tokenCache // nil: every Authenticate reads the store
}

// New returns a Service with defaults filled.
func New(ctx context.Context, st store.Store, h *Hasher, logger *slog.Logger) (*Service, error) {
	s := &Service{Store: st, Hasher: h, Logger: logger, Now: time.Now, TokenTTL: DefaultTokenTTL, TicketTTL: DefaultTicketTTL,
		tokens: newTokenCache(st)}
	dummy, err := h.Hash(ctx, "dummy password for timing")
	if err != nil {
		return nil, err
	}
	s.dummyHash = dummy
	return s, nil
}

// errBadLogin is the one answer to a wrong username or password.
var errBadLogin = lobby.Errorf(lobby.KindUnauthorized, "wrong username or password")

// CheckPassword verifies a username and password and returns the user.
// The answer for an unknown user and for a wrong password is the same, and
// takes the same time.
func (s *Service) CheckPassword(ctx context.Context, username, password string) (*lobby.User, error) {
	u, hash, err := s.Store.GetUserByName(ctx, username)
	if errors.Is(err, store.ErrNotFound) {
		_, _ = s.Hasher.Verify(ctx, password, s.dummyHash)
		return nil, errBadLogin
	}
	if err != nil {
		return nil, fmt.Errorf("look up user: %w", err)
	}
	ok, err := s.Hasher.Verify(ctx, password, hash)
	if err != nil {
		return nil, fmt.Errorf("verify password of %s: %w", username, err)
	}
	if !ok {
		return nil, errBadLogin
	}
	if u.Disabled {
		return nil, lobby.Errorf(lobby.KindForbidden, "account %s is disabled: ask an administrator", username)
	}
	return u, nil
}

// Login checks the password and issues a bearer token.
func (s *Service) Login(ctx context.Context, username, password string) (secret string, tok *store.Token, u *lobby.User, err error) {
	u, err = s.CheckPassword(ctx, username, password)
	if err == nil {
		err = s.admit(u)
	}
	if err != nil {
		return "", nil, nil, err
	}
	secret, tok, err = s.IssueToken(ctx, u.ID, "login", s.TokenTTL)
	return secret, tok, u, err
}

// IssueToken creates a token for a user.
func (s *Service) IssueToken(ctx context.Context, userID, name string, ttl time.Duration) (string, *store.Token, error) {
	secret, hash := newSecret(tokenPrefix)
	now := s.Now()
	tok := &store.Token{UserID: userID, Hash: hash, Name: name, Created: now, Expires: now.Add(ttl)}
	if err := s.Store.CreateToken(ctx, tok); err != nil {
		return "", nil, fmt.Errorf("create token: %w", err)
	}
	return secret, tok, nil
}

// Authenticate resolves a bearer token to its user. A token it accepted
// is trusted for TokenCacheTTL without reading the store again, unless
// a token or user was changed through this node's store since (see
// TokenCacheTTL).
func (s *Service) Authenticate(ctx context.Context, secret string) (*lobby.User, *store.Token, error) {
	if !strings.HasPrefix(secret, tokenPrefix) {
		return nil, nil, lobby.Errorf(lobby.KindUnauthorized, "the bearer token is not a Lobby token: sign in again")
	}
	u, tok, err := s.resolve(ctx, hashSecret(secret))
	if err == nil {
		err = s.admit(u)
	}
	if err != nil {
		return nil, nil, err
	}
	return u, tok, nil
}

// resolve finds a token's user in the cache, or in the store.
func (s *Service) resolve(ctx context.Context, hash string) (*lobby.User, *store.Token, error) {
	if s.tokens == nil {
		return s.authenticate(ctx, hash)
	}
	now := s.Now()
	if u, tok, ok := s.tokens.get(hash, now); ok {
		return u, tok, nil
	}
	epoch := s.tokens.epoch() // before reading the store
	u, tok, err := s.authenticate(ctx, hash)
	if err == nil {
		s.tokens.put(hash, u, tok, epoch, now)
	}
	return u, tok, err
}

// admit lets u in unless the node is in maintenance mode and u is not a
// full administrator.
func (s *Service) admit(u *lobby.User) error {
	if s.Maintenance == nil || u.Role == lobby.RoleAdmin {
		return nil
	}
	why := s.Maintenance()
	if why == "" {
		return nil
	}
	return lobby.Errorf(lobby.KindMaintenance, "this Lobby node is in maintenance mode (%s), so only administrators can sign in here: try again in a few minutes, or sign in through another node", why)
}

// RevokeToken revokes a token (signing out) and forgets it at once.
func (s *Service) RevokeToken(ctx context.Context, tok *store.Token) error {
	if err := s.Store.RevokeToken(ctx, tok.ID); err != nil {
		return err
	}
	if s.tokens != nil {
		s.tokens.forget(tok.Hash)
	}
	return nil
}

func (s *Service) authenticate(ctx context.Context, hash string) (*lobby.User, *store.Token, error) {
	tok, err := s.Store.GetToken(ctx, hash)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, lobby.Errorf(lobby.KindUnauthorized, "the bearer token is unknown: sign in again")
	}
	if err != nil {
		return nil, nil, fmt.Errorf("look up token: %w", err)
	}
	if tok.Revoked {
		return nil, nil, lobby.Errorf(lobby.KindUnauthorized, "the bearer token was revoked: sign in again")
	}
	if !s.Now().Before(tok.Expires) {
		return nil, nil, lobby.Errorf(lobby.KindUnauthorized, "the bearer token expired: sign in again")
	}
	u, err := s.Store.GetUser(ctx, tok.UserID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, lobby.Errorf(lobby.KindUnauthorized, "the token's user no longer exists")
	}
	if err != nil {
		return nil, nil, fmt.Errorf("look up user: %w", err)
	}
	if u.Disabled {
		return nil, nil, lobby.Errorf(lobby.KindForbidden, "account %s is disabled: ask an administrator", u.Username)
	}
	return u, tok, nil
}

// IssueTicket creates a single-use console ticket binding user and desktop.
func (s *Service) IssueTicket(ctx context.Context, userID, desktopID string) (string, time.Time, error) {
	return s.IssueTicketIn(ctx, s.Store, userID, desktopID)
}

// IssueTicketIn is IssueTicket through q: inside a transaction, the ticket
// exists only if it commits.
func (s *Service) IssueTicketIn(ctx context.Context, q store.Queries, userID, desktopID string) (string, time.Time, error) {
	secret, hash := newSecret(ticketPrefix)
	now := s.Now()
	t := &store.Ticket{Hash: hash, UserID: userID, DesktopID: desktopID, Created: now, Expires: now.Add(s.TicketTTL)}
	if err := q.CreateTicket(ctx, t); err != nil {
		return "", time.Time{}, fmt.Errorf("create ticket: %w", err)
	}
	return secret, t.Expires, nil
}

// RedeemTicket uses up a ticket and returns what it was bound to.
func (s *Service) RedeemTicket(ctx context.Context, secret string) (*store.Ticket, error) {
	t, err := s.Store.RedeemTicket(ctx, hashSecret(secret), s.Now())
	if errors.Is(err, store.ErrNotFound) {
		return nil, lobby.Errorf(lobby.KindUnauthorized, "the console ticket is unknown, expired or already used: connect again to get a new one")
	}
	if err != nil {
		return nil, fmt.Errorf("redeem ticket: %w", err)
	}
	return t, nil
}

// newSecret returns a random secret with a prefix and its stored hash.
func newSecret(prefix string) (secret, hash string) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	secret = prefix + base64.RawURLEncoding.EncodeToString(b[:])
	return secret, hashSecret(secret)
}

func hashSecret(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// RandomPassword returns a password of 20 characters from an alphabet
// without look-alikes.
func RandomPassword() string {
	const alphabet = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	var b [20]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b[:])
}

// Bootstrap is the outcome of EnsureAdmin.
type Bootstrap struct {
	Created   bool   // a new admin was made
	Password  string // the generated password, when one was generated
	EnvIgnore bool   // LOBBY_ADMIN_PASSWORD was given but an admin already exists
}

// EnsureAdmin creates the user "admin" when the store has no administrator,
// with envPassword or a random password. It is safe to call from several
// nodes at once: only one creates the user.
//
// It runs as a node starts, after New's hash and maybe one of its own: it
// then returns the hashes' memory to the system (each argon2id hash
// allocates 19 MiB, and an idle node allocates too little for the
// garbage collector to run again soon: 61 MiB RSS idle instead of 27).
func (s *Service) EnsureAdmin(ctx context.Context, envPassword string) (Bootstrap, error) {
	defer debug.FreeOSMemory() // a garbage collection, then the pages back
	n, err := s.Store.CountUsersWithRole(ctx, lobby.RoleAdmin)
	if err != nil {
		return Bootstrap{}, fmt.Errorf("count administrators: %w", err)
	}
	if n > 0 {
		return Bootstrap{EnvIgnore: envPassword != ""}, nil
	}
	var b Bootstrap
	pw := envPassword
	if pw == "" {
		pw = RandomPassword()
		b.Password = pw
	} else if err := lobby.ValidPassword(pw); err != nil {
		return Bootstrap{}, fmt.Errorf("LOBBY_ADMIN_PASSWORD: %s", lobby.ErrorMessage(err))
	}
	hash, err := s.Hasher.Hash(ctx, pw)
	if err != nil {
		return Bootstrap{}, err
	}
	u := &lobby.User{Username: "admin", Role: lobby.RoleAdmin, Created: s.Now()}
	err = s.Store.CreateUser(ctx, u, hash)
	if errors.Is(err, store.ErrConflict) {
		// Another node won the race, or "admin" exists without the role.
		return Bootstrap{EnvIgnore: envPassword != ""}, nil
	}
	if err != nil {
		return Bootstrap{}, fmt.Errorf("create first administrator: %w", err)
	}
	b.Created = true
	return b, nil
}

// TokenCacheTTL is how long Authenticate trusts what it read about a
// bearer token without reading the store again. A token revoked, or a
// user disabled or deleted, through this node stops working at once (the
// store's AuthEpoch moves and the cache forgets everything); through
// another node of a cluster it keeps working here for at most this long.
const TokenCacheTTL = 2 * time.Second

// tokenCacheMax bounds the entries kept; a full cache drops the stale
// ones, then everything.
const tokenCacheMax = 16384

// tokenCache remembers recent successful authentications by token hash.
// It is used only with a store that implements store.AuthEpocher.
type tokenCache struct {
	epochs store.AuthEpocher
	mu     sync.Mutex
	m      map[string]cachedToken
}

type cachedToken struct {
	user  lobby.User
	tok   store.Token
	epoch uint64
	until time.Time // TTL end, on the service's clock
}

func newTokenCache(st store.Store) *tokenCache {
	e, ok := st.(store.AuthEpocher)
	if !ok {
		return nil
	}
	return &tokenCache{epochs: e, m: map[string]cachedToken{}}
}

// epoch must be read before the store, and given to put with what was read.
func (c *tokenCache) epoch() uint64 { return c.epochs.AuthEpoch() }

// get returns copies of the user and token cached for hash, if the entry
// is fresh, no revocation happened since it was read, and the token has
// not expired at now.
func (c *tokenCache) get(hash string, now time.Time) (*lobby.User, *store.Token, bool) {
	epoch := c.epoch()
	c.mu.Lock()
	e, ok := c.m[hash]
	c.mu.Unlock()
	if !ok || e.epoch != epoch || !now.Before(e.until) || !now.Before(e.tok.Expires) {
		return nil, nil, false
	}
	u, tok := e.user, e.tok
	u.Groups = append([]string(nil), e.user.Groups...)
	return &u, &tok, true
}

func (c *tokenCache) put(hash string, u *lobby.User, tok *store.Token, epoch uint64, now time.Time) {
	e := cachedToken{user: *u, tok: *tok, epoch: epoch, until: now.Add(TokenCacheTTL)}
	e.user.Groups = append([]string(nil), u.Groups...)
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= tokenCacheMax {
		for h, old := range c.m {
			if !now.Before(old.until) || old.epoch != epoch {
				delete(c.m, h)
			}
		}
		if len(c.m) >= tokenCacheMax {
			clear(c.m)
		}
	}
	c.m[hash] = e
}

// forget drops one token (its revocation through this Service).
func (c *tokenCache) forget(hash string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, hash)
}
