package server

import (
	"testing"

	"lobby/internal/linkproto"
)

// TestJoinTokenAPI checks the wiring of join tokens and links: the API's
// tokens carry this node's CA, and its link list is the hub's.
func TestJoinTokenAPI(t *testing.T) {
	t.Parallel()
	s, base := node(t, "sqlite", 0)
	admin := login(t, base, "admin", adminPW)

	var created struct {
		Token   string
		ID      string
		MaxUses int `json:"max_uses"`
	}
	admin.want(201, "POST", "/api/v1/tokens", map[string]any{"expires_in": "1h", "uses": 2}, &created)
	jt, err := linkproto.ParseJoinToken(created.Token)
	if err != nil {
		t.Fatal(err)
	}
	if jt.CAFingerprint != s.CA.Fingerprint() || jt.ID != created.ID || created.MaxUses != 2 {
		t.Fatalf("token %+v, created %+v", jt, created)
	}

	var links list
	admin.want(200, "GET", "/api/v1/links", nil, &links)
	if links.Items == nil {
		t.Fatal("no items in the link list")
	}

	// The in-process agent's host has no certificate to revoke.
	var hosts list
	admin.want(200, "GET", "/api/v1/hosts", nil, &hosts)
	if len(hosts.Items) != 1 {
		t.Fatalf("hosts %+v", hosts.Items)
	}
	var e apiError
	admin.want(409, "POST", "/api/v1/hosts/"+hosts.Items[0]["id"].(string)+"/actions", map[string]string{"action": "revoke"}, &e)
	admin.want(404, "POST", "/api/v1/hosts/nope/actions", map[string]string{"action": "revoke"}, &e)
	admin.want(404, "DELETE", "/api/v1/hosts/nope", nil, &e)
	admin.want(204, "DELETE", "/api/v1/tokens/"+created.ID, nil, nil)
}
