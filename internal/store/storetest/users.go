package storetest

import (
	"fmt"
	"testing"
	"time"

	"lobby/internal/lobby"
	"lobby/internal/store"
)

func testUsers(t *testing.T, f *fixture) {
	u := &lobby.User{Username: "Alice@example", Role: lobby.RoleAdmin, Groups: []string{"a", "b"}, Created: at(0)}
	must(t, f.s.CreateUser(f.ctx, u, "hash1"))
	if len(u.ID) < 5 || u.ID[:4] != "usr_" {
		t.Fatalf("ID = %q, want usr_...", u.ID)
	}
	want := *u
	want.Created = at(0).Truncate(time.Microsecond)
	same(t, "created user", *u, want)

	got, err := f.s.GetUser(f.ctx, u.ID)
	must(t, err)
	same(t, "GetUser", *got, want)
	got, hash, err := f.s.GetUserByName(f.ctx, "Alice@example")
	must(t, err)
	same(t, "GetUserByName", *got, want)
	same(t, "hash", hash, "hash1")

	// Conflicts and unknowns.
	wantErr(t, f.s.CreateUser(f.ctx, &lobby.User{Username: "Alice@example", Role: lobby.RoleUser}, "h"), store.ErrConflict)
	wantErr(t, f.s.CreateUser(f.ctx, &lobby.User{ID: u.ID, Username: "other", Role: lobby.RoleUser}, "h"), store.ErrConflict)
	_, err = f.s.GetUser(f.ctx, "usr_nope")
	wantErr(t, err, store.ErrNotFound)
	_, _, err = f.s.GetUserByName(f.ctx, "alice@example") // exact match
	wantErr(t, err, store.ErrNotFound)
	wantErr(t, f.s.UpdateUser(f.ctx, &lobby.User{ID: "usr_nope", Role: lobby.RoleUser}), store.ErrNotFound)
	wantErr(t, f.s.SetPassword(f.ctx, "usr_nope", "h"), store.ErrNotFound)
	wantErr(t, f.s.DeleteUser(f.ctx, "usr_nope"), store.ErrNotFound)
	wantErr(t, f.s.LockUser(f.ctx, "usr_nope"), store.ErrNotFound)
	must(t, f.s.LockUser(f.ctx, u.ID))

	// Update: role, groups, disabled; not the username.
	u.Role, u.Groups, u.Disabled, u.Username = lobby.RoleOperator, nil, true, "renamed"
	must(t, f.s.UpdateUser(f.ctx, u))
	got, err = f.s.GetUser(f.ctx, u.ID)
	must(t, err)
	want.Role, want.Groups, want.Disabled = lobby.RoleOperator, []string{}, true
	same(t, "updated user", *got, want)

	must(t, f.s.SetPassword(f.ctx, u.ID, "hash2"))
	_, hash, err = f.s.GetUserByName(f.ctx, "Alice@example")
	must(t, err)
	same(t, "new hash", hash, "hash2")

	// Nil groups are stored as an empty list.
	v := &lobby.User{Username: "nogroups", Role: lobby.RoleUser}
	must(t, f.s.CreateUser(f.ctx, v, "h"))
	got, err = f.s.GetUser(f.ctx, v.ID)
	must(t, err)
	same(t, "groups", got.Groups, []string{})
	if got.Created.IsZero() || got.Created.Location() != time.UTC {
		t.Fatalf("Created = %v, want now in UTC", got.Created)
	}

	f.user(t, &userOpts{Role: ptr(lobby.RoleAdmin)})
	f.user(t, &userOpts{Role: ptr(lobby.RoleAdmin)})
	for role, n := range map[lobby.Role]int{lobby.RoleAdmin: 2, lobby.RoleOperator: 1, lobby.RoleUser: 1} {
		c, err := f.s.CountUsersWithRole(f.ctx, role)
		must(t, err)
		same(t, fmt.Sprintf("CountUsersWithRole(%s)", role), c, n)
	}

	must(t, f.s.DeleteUser(f.ctx, u.ID))
	_, err = f.s.GetUser(f.ctx, u.ID)
	wantErr(t, err, store.ErrNotFound)
}

func testUserPaging(t *testing.T, f *fixture) {
	var ids []string
	for range 7 {
		ids = append(ids, f.user(t, nil).ID)
	}
	all, err := f.s.ListUsers(f.ctx, store.ListOptions{})
	must(t, err)
	if len(all) != 7 {
		t.Fatalf("ListUsers: %d users, want 7", len(all))
	}
	var paged []string
	after := ""
	for {
		page, err := f.s.ListUsers(f.ctx, store.ListOptions{After: after, Limit: 3})
		must(t, err)
		if len(page) > 3 {
			t.Fatalf("page of %d, limit 3", len(page))
		}
		if len(page) == 0 {
			break
		}
		for _, u := range page {
			paged = append(paged, u.ID)
		}
		after = page[len(page)-1].ID
	}
	for i := range all {
		if i > 0 && all[i-1].ID >= all[i].ID {
			t.Fatalf("ListUsers not ordered by ID: %q before %q", all[i-1].ID, all[i].ID)
		}
		if paged[i] != all[i].ID {
			t.Fatalf("paging gave %v, listing %v", paged, all)
		}
	}
	if len(paged) != len(ids) {
		t.Fatalf("paging gave %d users, want %d", len(paged), len(ids))
	}
}

func testDeleteUserCascades(t *testing.T, f *fixture) {
	u := f.user(t, nil)
	h, p := f.host(t), f.pool(t)
	d := f.desktop(t, h, p, lobby.PowerRunning)
	must(t, f.s.CreateToken(f.ctx, &store.Token{UserID: u.ID, Hash: "th", Name: "login"}))
	must(t, f.s.CreateTicket(f.ctx, &store.Ticket{Hash: "kh", UserID: u.ID, DesktopID: d.ID, Expires: time.Now().Add(time.Hour)}))
	a := &lobby.Assignment{UserID: u.ID, PoolID: p.ID, Mode: lobby.NonPersistent}
	_, err := f.s.AssignFree(f.ctx, a)
	must(t, err)

	must(t, f.s.DeleteUser(f.ctx, u.ID))
	_, err = f.s.GetToken(f.ctx, "th")
	wantErr(t, err, store.ErrNotFound)
	_, err = f.s.RedeemTicket(f.ctx, "kh", time.Now())
	wantErr(t, err, store.ErrNotFound)
	_, err = f.s.GetAssignment(f.ctx, a.ID)
	wantErr(t, err, store.ErrNotFound)
	got, err := f.s.GetDesktop(f.ctx, d.ID)
	must(t, err)
	same(t, "desktop of a deleted user: AssignedTo", got.AssignedTo, "")
}

func testTokens(t *testing.T, f *fixture) {
	u, v := f.user(t, nil), f.user(t, nil)
	tok := &store.Token{UserID: u.ID, Hash: "aa", Name: "login", Created: at(0), Expires: at(time.Hour)}
	must(t, f.s.CreateToken(f.ctx, tok))
	if tok.ID[:4] != "tok_" {
		t.Fatalf("ID = %q, want tok_...", tok.ID)
	}
	want := store.Token{ID: tok.ID, UserID: u.ID, Hash: "aa", Name: "login",
		Created: at(0).Truncate(time.Microsecond), Expires: at(time.Hour).Truncate(time.Microsecond)}
	same(t, "created token", *tok, want)
	got, err := f.s.GetToken(f.ctx, "aa")
	must(t, err)
	same(t, "GetToken", *got, want)

	wantErr(t, f.s.CreateToken(f.ctx, &store.Token{UserID: v.ID, Hash: "aa", Name: "x"}), store.ErrConflict)
	wantErr(t, f.s.CreateToken(f.ctx, &store.Token{UserID: "usr_nope", Hash: "bb", Name: "x"}), store.ErrNotFound)
	_, err = f.s.GetToken(f.ctx, "nope")
	wantErr(t, err, store.ErrNotFound)
	wantErr(t, f.s.RevokeToken(f.ctx, "tok_nope"), store.ErrNotFound)

	must(t, f.s.RevokeToken(f.ctx, tok.ID))
	got, err = f.s.GetToken(f.ctx, "aa")
	must(t, err)
	if !got.Revoked {
		t.Fatal("token not revoked")
	}

	// RevokeUserTokens touches only that user's tokens.
	must(t, f.s.CreateToken(f.ctx, &store.Token{UserID: u.ID, Hash: "u2", Name: "cli"}))
	must(t, f.s.CreateToken(f.ctx, &store.Token{UserID: v.ID, Hash: "v1", Name: "cli"}))
	must(t, f.s.RevokeUserTokens(f.ctx, u.ID))
	must(t, f.s.RevokeUserTokens(f.ctx, "usr_without_tokens"))
	for hash, revoked := range map[string]bool{"u2": true, "v1": false} {
		got, err := f.s.GetToken(f.ctx, hash)
		must(t, err)
		same(t, "revoked "+hash, got.Revoked, revoked)
	}

	// Expiry: at or before now; a zero Expires never expires.
	must(t, f.s.CreateToken(f.ctx, &store.Token{UserID: v.ID, Hash: "old", Name: "x", Expires: at(-time.Minute)}))
	must(t, f.s.CreateToken(f.ctx, &store.Token{UserID: v.ID, Hash: "edge", Name: "x", Expires: at(0)}))
	n, err := f.s.DeleteExpiredTokens(f.ctx, at(0))
	must(t, err)
	same(t, "deleted", n, 2)
	for hash, exists := range map[string]bool{"old": false, "edge": false, "aa": true, "v1": true} {
		_, err := f.s.GetToken(f.ctx, hash)
		if exists {
			must(t, err)
		} else {
			wantErr(t, err, store.ErrNotFound)
		}
	}
}

func testTickets(t *testing.T, f *fixture) {
	u := f.user(t, nil)
	d := f.desktop(t, f.host(t), nil, lobby.PowerRunning)
	now := at(0)
	tk := &store.Ticket{Hash: "t1", UserID: u.ID, DesktopID: d.ID, Created: now, Expires: now.Add(time.Minute)}
	must(t, f.s.CreateTicket(f.ctx, tk))
	wantErr(t, f.s.CreateTicket(f.ctx, &store.Ticket{Hash: "t1", UserID: u.ID, DesktopID: d.ID, Expires: now}), store.ErrConflict)
	wantErr(t, f.s.CreateTicket(f.ctx, &store.Ticket{Hash: "t2", UserID: "usr_nope", DesktopID: d.ID, Expires: now}), store.ErrNotFound)
	wantErr(t, f.s.CreateTicket(f.ctx, &store.Ticket{Hash: "t3", UserID: u.ID, DesktopID: "dsk_nope", Expires: now}), store.ErrNotFound)

	got, err := f.s.RedeemTicket(f.ctx, "t1", now.Add(time.Second))
	must(t, err)
	same(t, "redeemed", *got, store.Ticket{Hash: "t1", UserID: u.ID, DesktopID: d.ID,
		Created: now.Truncate(time.Microsecond), Expires: now.Add(time.Minute).Truncate(time.Microsecond)})
	_, err = f.s.RedeemTicket(f.ctx, "t1", now.Add(time.Second))
	wantErr(t, err, store.ErrNotFound) // single use
	_, err = f.s.RedeemTicket(f.ctx, "unknown", now)
	wantErr(t, err, store.ErrNotFound)

	// Expired at now (Expires is exclusive).
	must(t, f.s.CreateTicket(f.ctx, &store.Ticket{Hash: "t4", UserID: u.ID, DesktopID: d.ID, Expires: now}))
	_, err = f.s.RedeemTicket(f.ctx, "t4", now)
	wantErr(t, err, store.ErrNotFound)
	_, err = f.s.RedeemTicket(f.ctx, "t4", now.Add(-time.Microsecond))
	must(t, err)
}

// testDeleteExpired: expired tickets (used or not) and tokens go, the
// others stay; a token without expiry never goes.
func testDeleteExpired(t *testing.T, f *fixture) {
	u := f.user(t, nil)
	d := f.desktop(t, f.host(t), nil, lobby.PowerRunning)
	now := at(0)
	for hash, exp := range map[string]time.Time{"gone": now.Add(-time.Minute), "edge": now, "used": now, "kept": now.Add(time.Second)} {
		must(t, f.s.CreateTicket(f.ctx, &store.Ticket{Hash: hash, UserID: u.ID, DesktopID: d.ID, Created: now.Add(-time.Hour), Expires: exp}))
	}
	_, err := f.s.RedeemTicket(f.ctx, "used", now.Add(-time.Second))
	must(t, err)
	n, err := f.s.DeleteExpiredTickets(f.ctx, now)
	must(t, err)
	same(t, "tickets deleted", n, 3)
	_, err = f.s.RedeemTicket(f.ctx, "kept", now)
	must(t, err)
	n, err = f.s.DeleteExpiredTickets(f.ctx, now)
	must(t, err)
	same(t, "tickets deleted again", n, 0)

	for hash, exp := range map[string]time.Time{"t-gone": now.Add(-time.Minute), "t-kept": now.Add(time.Second), "t-never": {}} {
		must(t, f.s.CreateToken(f.ctx, &store.Token{UserID: u.ID, Hash: hash, Name: "x", Expires: exp}))
	}
	n, err = f.s.DeleteExpiredTokens(f.ctx, now)
	must(t, err)
	same(t, "tokens deleted", n, 1)
	for hash, exists := range map[string]bool{"t-gone": false, "t-kept": true, "t-never": true} {
		_, err := f.s.GetToken(f.ctx, hash)
		if exists {
			must(t, err)
		} else {
			wantErr(t, err, store.ErrNotFound)
		}
	}
}
