package storetest

import (
	"sync"
	"testing"
	"time"

	"lobby/internal/lobby"
	"lobby/internal/store"
)

func testNodes(t *testing.T, f *fixture) {
	n1 := &lobby.Node{SiteID: 1, Name: "node-a", Address: "https://a:8443", Version: "1.0", SchemaVersion: 10, Started: at(0), Heartbeat: at(0)}
	must(t, f.s.RegisterNode(f.ctx, n1, "inst-a", at(-15*time.Second)))
	got, err := f.s.GetNode(f.ctx, 1)
	must(t, err)
	n1.Mode, n1.Instance = lobby.NodeNormal, "inst-a" // the instance is read back
	same(t, "GetNode", *got, *n1)

	// A second process on the same site ID is refused while the first is
	// alive, and takes over once its heartbeat is stale.
	n1b := &lobby.Node{SiteID: 1, Name: "node-b", Started: at(time.Second), Heartbeat: at(time.Second)}
	wantErr(t, f.s.RegisterNode(f.ctx, n1b, "inst-b", at(-15*time.Second)), store.ErrConflict)
	mode, err := f.s.Heartbeat(f.ctx, 1, "inst-a", at(5*time.Second))
	must(t, err)
	same(t, "mode from heartbeat", mode, lobby.NodeNormal)
	wantErr(t, f.s.RegisterNode(f.ctx, n1b, "inst-b", at(5*time.Second)), store.ErrConflict) // heartbeat not before staleBefore
	must(t, f.s.RegisterNode(f.ctx, n1b, "inst-b", at(6*time.Second)))
	got, err = f.s.GetNode(f.ctx, 1)
	must(t, err)
	same(t, "taken over node's name", got.Name, "node-b")
	same(t, "taken over node's instance", got.Instance, "inst-b")
	// The old process learns it lost its row.
	_, err = f.s.Heartbeat(f.ctx, 1, "inst-a", at(7*time.Second))
	wantErr(t, err, store.ErrConflict)
	// The same instance re-registers freely (a restart of the loop).
	must(t, f.s.RegisterNode(f.ctx, n1b, "inst-b", at(-time.Hour)))

	must(t, f.s.RegisterNode(f.ctx, &lobby.Node{SiteID: 2, Name: "node-c", Started: at(0), Heartbeat: at(0)}, "inst-c", at(-time.Hour)))
	must(t, f.s.SetNodeMode(f.ctx, 2, lobby.NodeDraining))
	mode, err = f.s.Heartbeat(f.ctx, 2, "inst-c", at(time.Second))
	must(t, err)
	same(t, "mode asked of node 2", mode, lobby.NodeDraining)
	ns, err := f.s.ListNodes(f.ctx)
	must(t, err)
	if len(ns) != 2 || ns[0].SiteID != 1 || ns[1].SiteID != 2 || ns[1].Mode != lobby.NodeDraining {
		t.Fatalf("ListNodes = %+v, want site IDs 1 and 2, 2 draining", ns)
	}
	must(t, f.s.DeleteNode(f.ctx, 2))
	wantErr(t, f.s.DeleteNode(f.ctx, 2), store.ErrNotFound)
	_, err = f.s.GetNode(f.ctx, 2)
	wantErr(t, err, store.ErrNotFound)
	wantErr(t, f.s.SetNodeMode(f.ctx, 9, lobby.NodeDraining), store.ErrNotFound)
}

func testLeases(t *testing.T, f *fixture) {
	ttl := 5 * time.Second
	l, held, err := f.s.AcquireLease(f.ctx, "singletons", 1, "inst-a", at(0), ttl)
	must(t, err)
	if !held || l.Term != 1 || l.Holder != 1 || !l.Expires.Equal(at(ttl).Truncate(time.Microsecond)) {
		t.Fatalf("first acquire = %+v, %v; want held in term 1 until now+ttl", l, held)
	}
	// Another node cannot take it before it expires; the holder renews it
	// in the same term.
	l, held, err = f.s.AcquireLease(f.ctx, "singletons", 2, "inst-b", at(time.Second), ttl)
	must(t, err)
	if held || l.Holder != 1 || l.Instance != "inst-a" {
		t.Fatalf("acquire by another before expiry = %+v, %v; want refused, naming holder 1", l, held)
	}
	l, held, err = f.s.AcquireLease(f.ctx, "singletons", 1, "inst-a", at(2*time.Second), ttl)
	must(t, err)
	if !held || l.Term != 1 {
		t.Fatalf("renew = %+v, %v; want held, term 1", l, held)
	}
	// Once expired, another takes it in the next term.
	l, held, err = f.s.AcquireLease(f.ctx, "singletons", 2, "inst-b", at(7*time.Second), ttl)
	must(t, err)
	if !held || l.Term != 2 || l.Holder != 2 {
		t.Fatalf("takeover after expiry = %+v, %v; want held by 2 in term 2", l, held)
	}
	// The old holder cannot renew; released, the lease is free at once.
	if _, held, _ = f.s.AcquireLease(f.ctx, "singletons", 1, "inst-a", at(8*time.Second), ttl); held {
		t.Fatal("the old holder renewed a lease it lost")
	}
	must(t, f.s.ReleaseLease(f.ctx, "singletons", "inst-a")) // not the holder: no effect
	if _, held, _ = f.s.AcquireLease(f.ctx, "singletons", 1, "inst-a", at(8*time.Second), ttl); held {
		t.Fatal("a release by a non-holder freed the lease")
	}
	must(t, f.s.ReleaseLease(f.ctx, "singletons", "inst-b"))
	l, held, err = f.s.AcquireLease(f.ctx, "singletons", 1, "inst-a", at(8*time.Second), ttl)
	must(t, err)
	if !held || l.Term != 3 {
		t.Fatalf("acquire after release = %+v, %v; want held in term 3", l, held)
	}
	cur, err := f.s.GetLease(f.ctx, "singletons")
	must(t, err)
	same(t, "GetLease", *cur, l)
	_, err = f.s.GetLease(f.ctx, "never")
	wantErr(t, err, store.ErrNotFound)

	// Racing for a free lease, exactly one wins.
	var wg sync.WaitGroup
	wins := make(chan int, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, held, err := f.s.AcquireLease(f.ctx, "race", 10+i, "inst-race-"+string(rune('a'+i)), at(0), ttl)
			if err != nil {
				t.Error(err)
			}
			if held {
				wins <- i
			}
		}()
	}
	wg.Wait()
	close(wins)
	if n := len(wins); n != 1 {
		t.Fatalf("%d racers won the lease, want exactly 1", n)
	}
}
