package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"lobby/internal/lobby"
	"lobby/internal/store"
	"lobby/internal/store/sqlite"
)

// countingStore is the real store, counting how Fence asks it about
// assignments.
type countingStore struct {
	store.Store
	t      *testing.T
	checks atomic.Int64 // calls of ExistingAssignments
}

func (s *countingStore) ExistingAssignments(ctx context.Context, ids []string) (map[string]bool, error) {
	s.checks.Add(1)
	return s.Store.ExistingAssignments(ctx, ids)
}

func (s *countingStore) GetAssignment(ctx context.Context, id string) (*lobby.Assignment, error) {
	s.t.Errorf("Fence asked for assignment %s alone: it must ask about all sessions in one query", id)
	return s.Store.GetAssignment(ctx, id)
}

// TestFenceEndsOnlyReleased: of several open sessions, Fence ends those
// whose assignment is gone (released through another node) and keeps the
// others, asking the store once per round.
func TestFenceEndsOnlyReleased(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	quiet := slog.New(slog.DiscardHandler)
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "lobby.db"), quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	st := &countingStore{Store: db, t: t}
	g := &Gateway{Store: st, Logger: quiet, Now: time.Now}

	h := &lobby.Host{Name: "h", Provider: "local", State: lobby.HostUp}
	u := &lobby.User{Username: "alice", Role: lobby.RoleUser, Groups: []string{}}
	must(t, db.UpsertHost(ctx, h))
	must(t, db.CreateUser(ctx, u, "x"))
	var (
		as       []*lobby.Assignment
		sessions []context.Context
	)
	for i := range 5 {
		d := &lobby.Desktop{Name: fmt.Sprintf("d%d", i), HostID: h.ID, Power: lobby.PowerRunning, ConsoleKind: "vnc", Tags: []string{}}
		must(t, db.CreateDesktop(ctx, d))
		a := &lobby.Assignment{DesktopID: d.ID, UserID: u.ID, Mode: lobby.NonPersistent}
		must(t, db.AssignDesktop(ctx, a))
		sctx, cancel := context.WithCancel(ctx)
		t.Cleanup(cancel)
		g.open(ctx, d, a, &session{cancel: cancel, assignment: a.ID})
		as, sessions = append(as, a), append(sessions, sctx)
	}
	released := map[int]bool{1: true, 3: true}
	for i := range released {
		must(t, db.DeleteAssignment(ctx, as[i].ID))
	}

	fctx, stop := context.WithCancel(ctx)
	defer stop()
	go g.Fence(fctx, 10*time.Millisecond)

	deadline := time.Now().Add(30 * time.Second)
	for i := range released {
		select {
		case <-sessions[i].Done():
		case <-time.After(time.Until(deadline)):
			t.Fatalf("the session of released desktop d%d is still open", i)
		}
	}
	// A few more rounds: the sessions still assigned stay open.
	for after := st.checks.Load() + 3; st.checks.Load() < after; {
		if time.Now().After(deadline) {
			t.Fatal("Fence stopped checking")
		}
		time.Sleep(5 * time.Millisecond)
	}
	for i, s := range sessions {
		if !released[i] && s.Err() != nil {
			t.Errorf("the session of desktop d%d, still assigned, was ended", i)
		}
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
