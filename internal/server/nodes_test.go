package server

import (
	"context"
	"net/http"
	"testing"
	"time"

	"lobby/internal/lobby"
)

// TestNodesAPI checks the cluster's node list and an operator's drain,
// resume and remove, through the real wiring.
func TestNodesAPI(t *testing.T) {
	t.Parallel()
	s, base := node(t, "sqlite", 0)
	admin := login(t, base, "admin", adminPW)

	var nodes list
	admin.want(200, "GET", "/api/v1/nodes", nil, &nodes)
	if len(nodes.Items) != 1 {
		t.Fatalf("nodes = %+v, want this one", nodes.Items)
	}
	n := nodes.Items[0]
	if n["site_id"] != float64(1) || n["alive"] != true || n["leader"] != true || n["mode"] != "normal" || n["address"] == "" {
		t.Fatalf("node = %+v, want site 1 alive, leading, normal, with its address", n)
	}

	var e apiError
	admin.want(409, "DELETE", "/api/v1/nodes/1", nil, &e) // alive
	admin.want(400, "POST", "/api/v1/nodes/1/actions", map[string]string{"action": "explode"}, &e)
	admin.want(400, "POST", "/api/v1/nodes/zero/actions", map[string]string{"action": "drain"}, &e)
	admin.want(404, "POST", "/api/v1/nodes/9/actions", map[string]string{"action": "drain"}, &e)

	// Drained, the node gives up the singleton duties at its next beat.
	admin.want(204, "POST", "/api/v1/nodes/1/actions", map[string]string{"action": "drain"}, nil)
	eventually(t, "the drained node gives up the lead", func() bool { return !s.Member.Leader() && s.Member.Mode() == lobby.NodeDraining })
	if code := getStatus(t, base+"/readyz"); code != 503 {
		t.Errorf("/readyz of a draining node = %d, want 503", code)
	}
	admin.want(204, "POST", "/api/v1/nodes/1/actions", map[string]string{"action": "resume"}, nil)
	eventually(t, "the resumed node leads again", s.Member.Leader)

	if code := getStatus(t, base+"/readyz"); code != 200 {
		t.Errorf("/readyz of a resumed node = %d, want 200", code)
	}

	// A dead node (a row whose heartbeat stopped long ago) can be removed.
	dead := &lobby.Node{SiteID: 7, Name: "gone", Started: time.Now().Add(-time.Hour), Heartbeat: time.Now().Add(-time.Hour)}
	if err := s.Store.RegisterNode(context.Background(), dead, "old", time.Now()); err != nil {
		t.Fatal(err)
	}
	admin.want(204, "DELETE", "/api/v1/nodes/7", nil, nil)
	admin.want(404, "DELETE", "/api/v1/nodes/7", nil, &e)
}

func getStatus(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
