package manage

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"lobby/internal/linkproto"
	"lobby/internal/lobby"
	"lobby/internal/store"
)

// Join token limits and defaults.
const (
	DefaultTokenTTL  = 24 * time.Hour
	MinTokenTTL      = time.Minute
	MaxTokenTTL      = 30 * 24 * time.Hour
	DefaultTokenUses = 1
	MaxTokenUses     = 10000
	MaxTokenNote     = 200 // characters
)

// JoinTokenSpec is what an administrator chooses for a new join token.
// Zero TTL and Uses take the defaults (24 hours, one use).
type JoinTokenSpec struct {
	TTL  time.Duration
	Uses int
	Note string
}

// Token states, as ListJoinTokens' callers show them (TokenState).
const (
	TokenActive  = "active"
	TokenExpired = "expired"
	TokenUsedUp  = "used up"
	TokenRevoked = "revoked"
)

// TokenState says whether a join token can still admit a host at now and,
// if not, why.
func TokenState(t *store.JoinToken, now time.Time) string {
	switch {
	case t.Revoked:
		return TokenRevoked
	case !now.Before(t.Expires):
		return TokenExpired
	case t.Uses >= t.MaxUses:
		return TokenUsedUp
	}
	return TokenActive
}

// ParseTokenTTL reads a token lifetime as a Go duration ("30m", "24h") or
// a number of days ("7d"), for the API and the pages alike; "" is the
// default. It checks the limits; the error blames the field "expires_in".
func ParseTokenTTL(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return DefaultTokenTTL, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err == nil {
			if n < 1 || n > int(MaxTokenTTL/(24*time.Hour)) {
				return 0, ttlRange(s)
			}
			return time.Duration(n) * 24 * time.Hour, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, lobby.FieldErrorf("expires_in", "expires_in %q is not a duration: write e.g. 30m, 24h or 7d (from 1 minute to 30 days)", s)
	}
	if err := ValidTokenTTL(d); err != nil {
		return 0, ttlRange(s)
	}
	return d, nil
}

// ValidTokenTTL checks a token lifetime against its limits.
func ValidTokenTTL(d time.Duration) error {
	if d < MinTokenTTL || d > MaxTokenTTL {
		return ttlRange(d.String())
	}
	return nil
}

func ttlRange(s string) error {
	return lobby.FieldErrorf("expires_in", "expires_in %s is out of range: a join token lives from 1 minute to 30 days (720h)", s)
}

// ValidTokenUses checks how many hosts a token may admit.
func ValidTokenUses(n int) error {
	if n < 1 || n > MaxTokenUses {
		return lobby.FieldErrorf("uses", "uses %d is out of range: a join token admits from 1 to %d hosts", n, MaxTokenUses)
	}
	return nil
}

// validNote checks a token's note: one line of printable text.
func validNote(v string) (string, error) {
	v = strings.TrimSpace(v)
	if !utf8.ValidString(v) {
		return "", lobby.FieldErrorf("note", "the note is not valid text")
	}
	if n := utf8.RuneCountInString(v); n > MaxTokenNote {
		return "", lobby.FieldErrorf("note", "the note is %d characters long: keep it to %d", n, MaxTokenNote)
	}
	if strings.IndexFunc(v, func(r rune) bool { return !unicode.IsPrint(r) && r != ' ' }) >= 0 {
		return "", lobby.FieldErrorf("note", "the note must be one line of text, without line breaks or control characters")
	}
	return v, nil
}

// CreateJoinToken issues a join token that admits up to spec.Uses hosts
// until spec.TTL from now; administrators only. It returns the token
// string for `lobby agent --join` (carrying the CA's fingerprint) and the
// stored token, which keeps only the secret's hash: the string cannot be
// shown again. Errors: forbidden, invalid (with the field), internal when
// the node has no cluster CA.
func (s *Service) CreateJoinToken(ctx context.Context, a Actor, spec JoinTokenSpec) (string, *store.JoinToken, error) {
	if err := Allow(a, lobby.PermConfigure); err != nil {
		return "", nil, err
	}
	if s.CAFingerprint == ([32]byte{}) {
		return "", nil, lobby.Errorf(lobby.KindInternal, "this node has no cluster certificate authority, so it cannot issue join tokens")
	}
	if spec.TTL == 0 {
		spec.TTL = DefaultTokenTTL
	}
	if spec.Uses == 0 {
		spec.Uses = DefaultTokenUses
	}
	if err := ValidTokenTTL(spec.TTL); err != nil {
		return "", nil, err
	}
	if err := ValidTokenUses(spec.Uses); err != nil {
		return "", nil, err
	}
	note, err := validNote(spec.Note)
	if err != nil {
		return "", nil, err
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", nil, fmt.Errorf("join token secret: %w", err)
	}
	secret := base64.RawURLEncoding.EncodeToString(raw[:])
	sum := sha256.Sum256([]byte(secret))
	now := s.now()
	t := &store.JoinToken{Hash: hex.EncodeToString(sum[:]), Note: note, CreatedBy: a.User.Username,
		Created: now, Expires: now.Add(spec.TTL), MaxUses: spec.Uses}
	err = s.Store.InTx(ctx, func(q store.Queries) error {
		if err := q.CreateJoinToken(ctx, t); err != nil {
			return StoreErr(err, "join token")
		}
		detail := fmt.Sprintf("join token %s: expires %s, %d use(s)", t.ID, t.Expires.UTC().Format(time.RFC3339), t.MaxUses)
		if note != "" {
			detail += ", note: " + note
		}
		return s.audit(ctx, q, a, "token.create", t.ID, detail)
	})
	if err != nil {
		return "", nil, err
	}
	return linkproto.JoinToken{ID: t.ID, Secret: secret, CAFingerprint: s.CAFingerprint}.String(), t, nil
}

// ListJoinTokens pages the join tokens by ID, whatever their state (see
// TokenState); administrators only. Secrets are never stored, and callers
// must not show the hashes.
func (s *Service) ListJoinTokens(ctx context.Context, a Actor, opt store.ListOptions) ([]store.JoinToken, error) {
	if err := Allow(a, lobby.PermConfigure); err != nil {
		return nil, err
	}
	ts, err := s.Store.ListJoinTokens(ctx, opt)
	if err != nil {
		return nil, err
	}
	return ts, nil
}

// RevokeJoinToken makes a join token unusable at once; hosts that joined
// with it keep their certificates (revoke those with RevokeHost).
// Administrators only; not found for an unknown ID.
func (s *Service) RevokeJoinToken(ctx context.Context, a Actor, id string) error {
	if err := Allow(a, lobby.PermConfigure); err != nil {
		return err
	}
	return s.Store.InTx(ctx, func(q store.Queries) error {
		if err := q.RevokeJoinToken(ctx, id); err != nil {
			return StoreErr(err, fmt.Sprintf("join token %q", id))
		}
		return s.audit(ctx, q, a, "token.revoke", id, "join token "+id+" revoked")
	})
}
