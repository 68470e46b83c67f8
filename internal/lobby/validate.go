package lobby

import (
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

// ValidName checks a pool, policy, host or desktop name: lowercase letters,
// digits, '.', '_' and '-', at most 63 characters, starting alphanumeric.
func ValidName(what, name string) error {
	if !nameRE.MatchString(name) {
		return FieldErrorf("name", "%s name %q is not valid: use 1-63 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit", what, name)
	}
	return nil
}

var usernameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$`)

// ValidUsername checks a username.
func ValidUsername(name string) error {
	if !usernameRE.MatchString(name) {
		return FieldErrorf("username", "username %q is not valid: use 1-128 letters, digits, '.', '_', '@' or '-', starting with a letter or digit", name)
	}
	return nil
}

// MinPasswordLen is the shortest password accepted.
const MinPasswordLen = 10

// ValidPassword checks a new password.
func ValidPassword(pw string) error {
	if len(pw) < MinPasswordLen {
		return FieldErrorf("password", "password is too short: use at least %d characters", MinPasswordLen)
	}
	if len(pw) > 1024 {
		return FieldErrorf("password", "password is too long: use at most 1024 characters")
	}
	return nil
}

// DesktopName expands a pool's naming pattern for the n-th desktop:
// "{n}" becomes n, "{n:3}" becomes n zero-padded to 3 digits.
func DesktopName(pattern string, n int) string {
	if i := strings.Index(pattern, "{n:"); i >= 0 {
		if j := strings.Index(pattern[i:], "}"); j > 0 {
			width, err := strconv.Atoi(pattern[i+3 : i+j])
			if err == nil && width > 0 && width < 10 {
				return pattern[:i] + fmt.Sprintf("%0*d", width, n) + pattern[i+j+1:]
			}
		}
	}
	return strings.Replace(pattern, "{n}", strconv.Itoa(n), 1)
}

// Validate checks a pool and fills defaults.
func (p *Pool) Validate() error {
	if err := ValidName("pool", p.Name); err != nil {
		return err
	}
	if p.NamePattern == "" {
		p.NamePattern = p.Name + "-{n}"
	}
	if !strings.Contains(p.NamePattern, "{n") {
		return FieldErrorf("name_pattern", "name_pattern %q must contain {n} (or {n:3} for zero-padding), which is replaced by the desktop's number", p.NamePattern)
	}
	if err := ValidName("desktop", DesktopName(p.NamePattern, 1)); err != nil {
		return FieldErrorf("name_pattern", "name_pattern %q gives desktop names that are not valid: %s", p.NamePattern, ErrorMessage(err))
	}
	switch {
	case p.MinSize < 0:
		return FieldErrorf("min_size", "min_size must not be negative")
	case p.MinFree < 0:
		return FieldErrorf("min_free", "min_free must not be negative")
	case p.MaxSize <= 0:
		return FieldErrorf("max_size", "max_size must be at least 1")
	case p.MaxSize > 100000:
		return FieldErrorf("max_size", "max_size must be at most 100000")
	case p.MinSize > p.MaxSize:
		return FieldErrorf("min_size", "min_size (%d) must not exceed max_size (%d)", p.MinSize, p.MaxSize)
	case p.MinFree > p.MaxSize:
		return FieldErrorf("min_free", "min_free (%d) must not exceed max_size (%d)", p.MinFree, p.MaxSize)
	}
	if p.Template == "" {
		p.Template = "default"
	}
	return nil
}

// Validate checks a policy and fills defaults.
func (p *Policy) Validate() error {
	if err := ValidName("policy", p.Name); err != nil {
		return err
	}
	if len(p.Pools) == 0 {
		return FieldErrorf("pools", "policy %q offers no pools: give at least one pool", p.Name)
	}
	if len(p.Users) == 0 && len(p.Groups) == 0 {
		return FieldErrorf("users", "policy %q applies to nobody: give users (\"*\" for everyone) or groups", p.Name)
	}
	if p.MaxDesktops == 0 {
		p.MaxDesktops = 1
	}
	if p.MaxDesktops < 0 || p.MaxDesktops > 1000 {
		return FieldErrorf("max_desktops", "max_desktops must be between 1 and 1000")
	}
	switch p.Mode {
	case "":
		p.Mode = NonPersistent
	case Persistent, NonPersistent:
	default:
		return FieldErrorf("mode", "mode %q is not valid: use %q or %q", p.Mode, Persistent, NonPersistent)
	}
	switch p.PowerPlan {
	case "":
		p.PowerPlan = PowerKeep
	case PowerKeep, PowerStop, PowerSuspend:
	default:
		return FieldErrorf("power_on_release", "power_on_release %q is not valid: use keep, stop or suspend", p.PowerPlan)
	}
	return p.Release.Validate()
}

// Validate checks a release plan.
func (r *ReleasePlan) Validate() error {
	if r.DisconnectMinutes < 0 || r.DisconnectMinutes > 525600 {
		return FieldErrorf("disconnect_minutes", "release.disconnect_minutes must be between 0 (never) and 525600")
	}
	if r.AtTime != "" {
		if _, _, err := r.ClockTime(); err != nil {
			return err
		}
	}
	return nil
}

// ClockTime parses AtTime as hour and minute.
func (r *ReleasePlan) ClockTime() (hour, minute int, err error) {
	t, err := time.Parse("15:04", r.AtTime)
	if err != nil {
		return 0, 0, FieldErrorf("at_time", "release.at_time %q is not valid: use HH:MM on a 24-hour clock, e.g. 19:30", r.AtTime)
	}
	return t.Hour(), t.Minute(), nil
}

// Applies reports whether the policy covers the user.
func (p *Policy) Applies(u *User) bool {
	for _, name := range p.Users {
		if name == "*" || name == u.Username {
			return true
		}
	}
	for _, g := range p.Groups {
		for _, ug := range u.Groups {
			if g == ug {
				return true
			}
		}
	}
	return false
}

// NewID returns a random identifier with the given prefix, e.g. "dsk_...".
func NewID(prefix string) string {
	var b [10]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return prefix + "_" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}
