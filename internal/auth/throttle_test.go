package auth

import (
	"strings"
	"testing"
	"time"

	"lobby/internal/lobby"
)

func TestThrottle(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	th := NewThrottle()
	th.Now = func() time.Time { return now }

	for i := range 5 {
		if err := th.Check("alice", "10.0.0.1"); err != nil {
			t.Fatalf("attempt %d refused: %v", i+1, err)
		}
		th.Fail("alice", "10.0.0.1")
	}
	err := th.Check("Alice", "10.0.0.2")
	if lobby.ErrorKind(err) != lobby.KindRateLimited || !strings.Contains(err.Error(), "for this account") {
		t.Fatalf("sixth attempt on the account from elsewhere: got %v, want rate limited for this account", err)
	}
	if err := th.Check("bob", "10.0.0.1"); err != nil {
		t.Fatalf("another account from the same address refused early: %v", err)
	}

	// The address budget counts failures over all accounts.
	for i := range 15 {
		th.Fail("user"+string(rune('a'+i)), "10.0.0.1")
	}
	if err := th.Check("carol", "10.0.0.1"); lobby.ErrorKind(err) != lobby.KindRateLimited || !strings.Contains(err.Error(), "from your address") {
		t.Fatalf("after 20 failures from one address: got %v, want rate limited from your address", err)
	}
	if err := th.Check("carol", "10.0.0.3"); err != nil {
		t.Fatalf("carol from a clean address refused: %v", err)
	}

	// A success clears the account's failures, not the address's.
	th.Succeed("alice")
	if err := th.Check("alice", "10.0.0.2"); err != nil {
		t.Fatalf("alice after a success refused: %v", err)
	}

	// Failures leave the window.
	now = now.Add(15*time.Minute + time.Second)
	if err := th.Check("carol", "10.0.0.1"); err != nil {
		t.Fatalf("after the window: %v", err)
	}
}

func TestThrottleNilAllows(t *testing.T) {
	t.Parallel()
	var th *Throttle
	th.Fail("a", "b")
	if err := th.Check("a", "b"); err != nil {
		t.Fatal(err)
	}
}
