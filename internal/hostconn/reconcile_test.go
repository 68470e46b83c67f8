package hostconn

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"lobby/internal/lobby"
	"lobby/internal/provider"
	"lobby/internal/store"
	"lobby/internal/store/sqlite"
)

func TestReconcile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "db"), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	h := &lobby.Host{Name: "h", Provider: "memory", State: lobby.HostUp}
	if err := st.UpsertHost(ctx, h); err != nil {
		t.Fatal(err)
	}
	u := &lobby.User{Username: "alice", Role: lobby.RoleUser, Groups: []string{}}
	if err := st.CreateUser(ctx, u, "x"); err != nil {
		t.Fatal(err)
	}
	add := func(name string, power lobby.PowerState) *lobby.Desktop {
		d := &lobby.Desktop{Name: name, HostID: h.ID, Power: power, ConsoleKind: "vnc", Tags: []string{}}
		if err := st.CreateDesktop(ctx, d); err != nil {
			t.Fatal(err)
		}
		return d
	}
	changed := add("changed", lobby.PowerRunning)
	creating := add("creating", lobby.PowerCreating)
	gone := add("gone", lobby.PowerRunning)
	goneHeld := add("gone-held", lobby.PowerRunning)
	if err := st.AssignDesktop(ctx, &lobby.Assignment{DesktopID: goneHeld.ID, UserID: u.ID, Mode: lobby.NonPersistent}); err != nil {
		t.Fatal(err)
	}
	reported := []provider.Desktop{
		{Name: "changed", Power: lobby.PowerSuspended, ConsoleKind: "vnc"},
		{Name: "new", Power: lobby.PowerRunning, ConsoleKind: "vnc", ConsolePort: 5901},
	}
	if err := Reconcile(ctx, st, h.ID, reported, time.Now()); err != nil {
		t.Fatal(err)
	}
	power := func(id string) lobby.PowerState {
		d, err := st.GetDesktop(ctx, id)
		if err != nil {
			return "missing"
		}
		return d.Power
	}
	tests := []struct {
		what string
		got  lobby.PowerState
		want lobby.PowerState
	}{
		{"a changed state is taken", power(changed.ID), lobby.PowerSuspended},
		{"a state owned by a job is left alone", power(creating.ID), lobby.PowerCreating},
		{"a vanished free desktop is removed", power(gone.ID), "missing"},
		{"a vanished held desktop is marked in error", power(goneHeld.ID), lobby.PowerError},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: %s, want %s", tt.what, tt.got, tt.want)
		}
	}
	d, err := st.GetDesktopByName(ctx, h.ID, "new")
	if err != nil || d.Power != lobby.PowerRunning || d.PoolID != "" {
		t.Fatalf("discovered desktop: %+v, %v", d, err)
	}
	// A second pass with the same report changes nothing.
	if err := Reconcile(ctx, st, h.ID, reported, time.Now()); err != nil {
		t.Fatal(err)
	}
	all, _ := st.ListDesktops(ctx, store.DesktopFilter{HostID: h.ID}, store.ListOptions{})
	if len(all) != 4 {
		t.Fatalf("%d desktops after a second pass, want 4", len(all))
	}
}
