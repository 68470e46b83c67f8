package cli

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"lobby/internal/client"
	"lobby/internal/pki"
)

func TestLinkCommands(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		token  string
		args   []string
		code   int
		stdout []string
		stderr []string
	}{
		{name: "token create", token: adminToken, args: []string{"admin", "token", "create", "--uses", "3", "--note", "rack 4"},
			stdout: []string{"LJ1.jtk_1.s3cret.AAAA\n"}, stderr: []string{"Join token jtk_1: expires ", "(in 24h), admits 3 host(s)", "lobby agent --join TOKEN --hub http://127.0.0.1:"}},
		{name: "token create invalid", token: adminToken, args: []string{"admin", "token", "create", "--expires", "99d"}, code: 1, stderr: []string{"expires_in 99d is out of range"}},
		{name: "token create zero uses", token: adminToken, args: []string{"admin", "token", "create", "--uses", "0"}, code: 2, stderr: []string{"--uses 0 is not valid"}},
		{name: "token create forbidden", token: userToken, args: []string{"admin", "token", "create"}, code: 3, stderr: []string{"your role does not allow this"}},
		{name: "token list", token: adminToken, args: []string{"admin", "token", "list"}, stdout: []string{"ID     STATE   USES", "jtk_1  active  1/3", "admin", "rack 4"}},
		{name: "token revoke", token: adminToken, args: []string{"admin", "token", "revoke", "jtk_1"}, stdout: []string{"Revoked join token jtk_1"}},
		{name: "token revoke unknown", token: adminToken, args: []string{"admin", "token", "revoke", "jtk_2"}, code: 4, stderr: []string{`join token "jtk_2" does not exist`}},
		{name: "links", token: adminToken, args: []string{"links", "list"},
			stdout: []string{"KIND  PEER            HUB    STATE    ADDRESS", "RTT     LAST ERROR", "leaf  alpha           node1  up       192.0.2.7:5000", "0.4 ms  -", "leaf  gamma           node1  refused", "the join token jtk_9 expired",
				"node  node2 (site 2)  node1  up       https://192.0.2.20:8443", "0.2 ms",
				"Upstream hubs of each host, in order:\n  alpha (ping 1s): 1. https://node1:8443,ping=1s  2. https://node2:8443,mask=hub2.*,auto=off,secure-only\n"}},
		{name: "links forbidden", token: userToken, args: []string{"links", "list"}, code: 3},
		{name: "hosts revoke", token: adminToken, args: []string{"hosts", "revoke", "alpha"}, stdout: []string{"Revoked host alpha (host_a): its link is cut"}},
		{name: "hosts revoke unknown", token: adminToken, args: []string{"hosts", "revoke", "zeta"}, code: 4, stderr: []string{`host "zeta" does not exist`}},
		{name: "hosts remove", token: adminToken, args: []string{"hosts", "remove", "beta"}, stdout: []string{"Removed host beta."}},
		{name: "hosts remove linked", token: adminToken, args: []string{"hosts", "remove", "alpha"}, code: 5, stderr: []string{"revoke it first"}},
		{name: "hosts remove unknown", token: adminToken, args: []string{"hosts", "remove", "zeta"}, code: 4},
		{name: "cluster-key offline", args: []string{"admin", "cluster-key"}, stderr: []string{"same LOBBY_CLUSTER_KEY to every node"}},
		{name: "admin no verb", args: []string{"admin"}, code: 2, stderr: []string{"admin: missing verb: use one of token, cluster-key"}},
		{name: "admin token no verb", args: []string{"admin", "token"}, code: 2, stderr: []string{"admin token: missing verb: use one of create, list, revoke"}},
		{name: "admin token bad verb", args: []string{"admin", "token", "burn"}, code: 2, stderr: []string{`admin token: unknown verb "burn"`}},
		{name: "admin bad verb", args: []string{"admin", "reboot"}, code: 2, stderr: []string{`admin: unknown verb "reboot"`}},
		{name: "token revoke no id", token: adminToken, args: []string{"admin", "token", "revoke"}, code: 2, stderr: []string{"missing argument ID", "usage: lobby admin token revoke ID"}},
		{name: "help token create", args: []string{"help", "admin", "token", "create"}, stdout: []string{"usage: lobby admin token create [flags]", "--expires DURATION", "--uses N", "--note TEXT"}},
		{name: "help lists", args: []string{"help"}, stdout: []string{"admin token create", "links list", "hosts revoke HOST", "admin cluster-key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			if tt.token != "" {
				b.loggedIn(t, tt.token)
			}
			res := b.run(context.Background(), "", false, tt.args...)
			if res.code != tt.code || !contains(res.stdout, tt.stdout...) || !contains(res.stderr, tt.stderr...) {
				t.Errorf("code %d, want %d\nstdout:\n%s\nstderr:\n%s", res.code, tt.code, res.stdout, res.stderr)
			}
		})
	}
}

func TestTokenCreateSends(t *testing.T) {
	t.Parallel()
	b := setup(t).loggedIn(t, adminToken)
	res := b.run(context.Background(), "", false, "admin", "token", "create", "--expires", "2h", "--uses", "5", "--note", "lab", "--json")
	if res.code != 0 {
		t.Fatalf("code %d: %s", res.code, res.stderr)
	}
	var got client.NewJoinToken
	if err := json.Unmarshal([]byte(res.stdout), &got); err != nil || got.Token != "LJ1.jtk_1.s3cret.AAAA" || got.ID != "jtk_1" || got.MaxUses != 5 {
		t.Fatalf("--json: %+v %v\n%s", got, err, res.stdout)
	}
	_, _, _, created, _ := b.api.snapshot()
	if len(created) != 1 || created[0] != `{"expires_in":"2h","uses":5,"note":"lab"}` {
		t.Fatalf("sent %q", created)
	}

	res = b.run(context.Background(), "", false, "links", "list", "--json")
	var ls []map[string]any
	if err := json.Unmarshal([]byte(res.stdout), &ls); err != nil || len(ls) != 3 || ls[0]["peer"] != "alpha" || ls[0]["rtt_ms"] != 0.42 || ls[2]["peer_site_id"] != 2.0 {
		t.Fatalf("links --json: %v\n%s", err, res.stdout)
	}
	res = b.run(context.Background(), "", false, "admin", "token", "list", "--json")
	var ts []map[string]any
	if err := json.Unmarshal([]byte(res.stdout), &ts); err != nil || len(ts) != 1 || ts[0]["state"] != "active" {
		t.Fatalf("token list --json: %v\n%s", err, res.stdout)
	}
}

func TestClusterKey(t *testing.T) {
	t.Parallel()
	b := setup(t) // not logged in: the command is offline
	first := b.run(context.Background(), "", false, "admin", "cluster-key")
	second := b.run(context.Background(), "", false, "admin", "cluster-key")
	key := strings.TrimSpace(first.stdout)
	if first.code != 0 || strings.Count(first.stdout, "\n") != 1 || key == strings.TrimSpace(second.stdout) {
		t.Fatalf("keys %q and %q (code %d, %s)", first.stdout, second.stdout, first.code, first.stderr)
	}
	if _, err := pki.ParseClusterKey(key); err != nil {
		t.Fatalf("the printed key is refused: %v", err)
	}
}
