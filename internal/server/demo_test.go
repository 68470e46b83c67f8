package server

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"lobby/internal/cli"
)

// TestRemoveDemoPoolByCLI: an administrator at a shell removes the demo
// pool of a real node, whose pool manager keeps the pool at its minimum
// size (a deleted desktop comes back): `lobby pools rm` is refused with
// the way to do it, and following that way (minimums to 0, then delete
// the desktops) works.
func TestRemoveDemoPoolByCLI(t *testing.T) {
	t.Parallel()
	_, base := node(t, "sqlite", 3)
	admin := login(t, base, "admin", adminPW)
	run := func(want int, args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		env := map[string]string{"LOBBY_SERVER": base, "LOBBY_TOKEN": admin.token}
		code := cli.Main(context.Background(), args, cli.Env{Stdout: &out, Stderr: &errOut, ConfigDir: t.TempDir(),
			Getenv: func(k string) string { return env[k] }})
		if code != want {
			t.Fatalf("lobby %s: exit %d, want %d\n%s%s", strings.Join(args, " "), code, want, out.String(), errOut.String())
		}
		return out.String() + errOut.String()
	}
	counts := func() (total, free int) {
		var p struct{ Counts struct{ Total, Free int } }
		admin.want(200, "GET", "/api/v1/pools/demo", nil, &p)
		return p.Counts.Total, p.Counts.Free
	}
	eventually(t, "the demo pool's 3 desktops running", func() bool { _, free := counts(); return free == 3 })

	// What the refusal explains: while the pool's minimum is 3, the pool
	// manager provisions a deleted desktop again.
	demo1 := func() (id, power string) {
		var ds list
		admin.want(200, "GET", "/api/v1/desktops?pool=demo", nil, &ds)
		for _, d := range ds.Items {
			if d["name"] == "demo-1" {
				return d["id"].(string), d["power"].(string)
			}
		}
		return "", ""
	}
	first, _ := demo1()
	run(cli.ExitOK, "desktops", "rm", "demo-1")
	eventually(t, "a new demo-1 provisioned in place of the deleted one", func() bool {
		id, power := demo1()
		return id != "" && id != first && power == "running"
	})

	out := run(cli.ExitConflict, "pools", "rm", "demo")
	if want := "lobby: pool demo still has 3 desktops: set its minimum size and free desktops to 0 (lobby pools set demo --min 0 --min-free 0"; !strings.HasPrefix(out, want) {
		t.Fatalf("pools rm said:\n%s\nwant it to start with:\n%s", out, want)
	}
	run(cli.ExitOK, "pools", "set", "demo", "--min", "0", "--min-free", "0")
	for i := 1; i <= 3; i++ {
		if out := run(cli.ExitOK, "desktops", "rm", fmt.Sprintf("demo-%d", i)); !strings.Contains(out, "Queued delete") {
			t.Fatalf("desktops rm said %q", out)
		}
	}
	eventually(t, "the demo desktops deleted", func() bool { total, _ := counts(); return total == 0 })
	if out := run(cli.ExitOK, "pools", "rm", "demo"); out != "Deleted pool demo.\n" {
		t.Fatalf("pools rm said %q", out)
	}
	admin.want(404, "GET", "/api/v1/pools/demo", nil, nil)
}
