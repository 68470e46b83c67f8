package lobby

import (
	"strings"
	"testing"
)

func TestDesktopName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pattern string
		n       int
		want    string
	}{
		{"demo-{n}", 3, "demo-3"},
		{"lab-{n:3}", 7, "lab-007"},
		{"lab-{n:3}-x", 1234, "lab-1234-x"},
		{"{n}", 1, "1"},
		{"bad-{n:x}", 2, "bad-{n:x}"},
	}
	for _, tt := range tests {
		if got := DesktopName(tt.pattern, tt.n); got != tt.want {
			t.Errorf("DesktopName(%q, %d) = %q, want %q", tt.pattern, tt.n, got, tt.want)
		}
	}
}

func TestPoolValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		pool Pool
		err  string
	}{
		{"defaults", Pool{Name: "demo", MaxSize: 3}, ""},
		{"bad name", Pool{Name: "Demo Pool", MaxSize: 3}, "pool name"},
		{"no max", Pool{Name: "p"}, "max_size must be at least 1"},
		{"min over max", Pool{Name: "p", MinSize: 4, MaxSize: 3}, "min_size (4) must not exceed"},
		{"free over max", Pool{Name: "p", MinFree: 4, MaxSize: 3}, "min_free (4)"},
		{"negative", Pool{Name: "p", MinFree: -1, MaxSize: 3}, "negative"},
		{"pattern without n", Pool{Name: "p", MaxSize: 3, NamePattern: "fixed"}, "must contain {n}"},
		{"pattern bad chars", Pool{Name: "p", MaxSize: 3, NamePattern: "A B {n}"}, "not valid"},
	}
	for _, tt := range tests {
		p := tt.pool
		err := p.Validate()
		if tt.err == "" {
			if err != nil || p.NamePattern != p.Name+"-{n}" || p.Template != "default" {
				t.Errorf("%s: %v, %+v", tt.name, err, p)
			}
			continue
		}
		if err == nil || ErrorKind(err) != KindInvalid || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%s: got %v, want invalid containing %q", tt.name, err, tt.err)
		}
	}
}

func TestPolicyValidate(t *testing.T) {
	t.Parallel()
	base := func() Policy { return Policy{Name: "p", Pools: []string{"pool_1"}, Users: []string{"*"}} }
	tests := []struct {
		name string
		edit func(*Policy)
		err  string
	}{
		{"defaults", func(*Policy) {}, ""},
		{"no pools", func(p *Policy) { p.Pools = nil }, "offers no pools"},
		{"nobody", func(p *Policy) { p.Users = nil }, "applies to nobody"},
		{"bad mode", func(p *Policy) { p.Mode = "sometimes" }, "mode"},
		{"bad power", func(p *Policy) { p.PowerPlan = "explode" }, "power_on_release"},
		{"bad time", func(p *Policy) { p.Release.AtTime = "25:00" }, "HH:MM"},
		{"bad minutes", func(p *Policy) { p.Release.DisconnectMinutes = -5 }, "disconnect_minutes"},
		{"too many", func(p *Policy) { p.MaxDesktops = 5000 }, "max_desktops"},
	}
	for _, tt := range tests {
		p := base()
		tt.edit(&p)
		err := p.Validate()
		if tt.err == "" {
			if err != nil || p.Mode != NonPersistent || p.PowerPlan != PowerKeep || p.MaxDesktops != 1 {
				t.Errorf("%s: %v, %+v", tt.name, err, p)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%s: got %v, want %q", tt.name, err, tt.err)
		}
	}
}

func TestPolicyApplies(t *testing.T) {
	t.Parallel()
	alice := &User{Username: "alice", Groups: []string{"staff"}}
	tests := []struct {
		users, groups []string
		want          bool
	}{
		{[]string{"*"}, nil, true},
		{[]string{"alice"}, nil, true},
		{[]string{"bob"}, nil, false},
		{nil, []string{"staff"}, true},
		{nil, []string{"admins"}, false},
	}
	for _, tt := range tests {
		p := Policy{Users: tt.users, Groups: tt.groups}
		if got := p.Applies(alice); got != tt.want {
			t.Errorf("users %v groups %v: %v, want %v", tt.users, tt.groups, got, tt.want)
		}
	}
}

func TestRoles(t *testing.T) {
	t.Parallel()
	if RoleUser.Can(PermRead) || !RoleUser.Can(PermConnect) || !RoleOperator.Can(PermOperate) || RoleOperator.Can(PermConfigure) || !RoleAdmin.Can(PermManageUsers) {
		t.Fatal("role permissions are wrong")
	}
	if Role("root").Valid() || Role("root").Can(PermConnect) {
		t.Fatal("an unknown role has rights")
	}
}
