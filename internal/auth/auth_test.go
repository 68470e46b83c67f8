package auth

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"
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
