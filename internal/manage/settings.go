package manage

import (
	"context"
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"

	"lobby/internal/lobby"
	"lobby/internal/store"
)

// BannerKey is the setting holding the message the portal shows everyone.
const BannerKey = "portal.banner"

// MaxBanner bounds the banner, in characters.
const MaxBanner = 500

// Banner is the portal banner, "" when none is set.
func (s *Service) Banner(ctx context.Context) (string, error) {
	v, err := s.Store.GetSetting(ctx, BannerKey)
	if errors.Is(err, store.ErrNotFound) {
		return "", nil
	}
	return v, err
}

// validBanner checks a banner message: one line of printable text.
func validBanner(v string) (string, error) {
	v = strings.TrimSpace(v)
	if !utf8.ValidString(v) {
		return "", lobby.FieldErrorf("banner", "the message is not valid text")
	}
	if n := utf8.RuneCountInString(v); n > MaxBanner {
		return "", lobby.FieldErrorf("banner", "the message is %d characters long: keep it to %d", n, MaxBanner)
	}
	if strings.IndexFunc(v, func(r rune) bool { return !unicode.IsPrint(r) && r != ' ' }) >= 0 {
		return "", lobby.FieldErrorf("banner", "the message must be one line of text, without line breaks or control characters")
	}
	return v, nil
}

// SetBanner validates and stores the portal banner ("" clears it). It
// reports whether anything changed.
func (s *Service) SetBanner(ctx context.Context, a Actor, text string) (bool, error) {
	if err := Allow(a, lobby.PermConfigure); err != nil {
		return false, err
	}
	v, err := validBanner(text)
	if err != nil {
		return false, err
	}
	cur, err := s.Banner(ctx)
	if err != nil {
		return false, err
	}
	if v == cur {
		return false, nil
	}
	detail := "portal banner cleared"
	if v != "" {
		detail = "portal banner: " + v
	}
	return true, s.Store.InTx(ctx, func(q store.Queries) error {
		if err := q.SetSetting(ctx, BannerKey, v); err != nil {
			return err
		}
		return s.audit(ctx, q, a, "setting.update", BannerKey, detail)
	})
}
