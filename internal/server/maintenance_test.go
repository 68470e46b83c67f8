package server

import (
	"path/filepath"
	"strings"
	"testing"

	"lobby/internal/lobby"
	"lobby/internal/provider/memory"
	"lobby/internal/store/sqlite"
	"lobby/internal/store/sqlstore"
)

// TestMaintenanceStopsWorkUntilMigrated: a node started without
// migrating an older database takes no jobs and no singleton duties (its
// demo pool stays empty, and /connect is refused to everyone but
// administrators, who find nothing to connect to); once the database is
// migrated it leads, stocks the pool through its work queue, and a user
// connects.
func TestMaintenanceStopsWorkUntilMigrated(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	db, err := sqlite.Open(t.Context(), filepath.Join(data, "lobby.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := sqlstore.MigrateTo(t.Context(), db.MigrateConfig(), 10); err != nil {
		t.Fatal(err)
	}
	db.Close()
	prov, err := memory.New(memory.Config{})
	if err != nil {
		t.Fatal(err)
	}
	s, base := start(t, Config{
		Listen: "127.0.0.1:0", DataDir: data, PlainHTTP: true, AdminPassword: adminPW, NoMigrate: true,
		LocalAgent: true, Provider: prov, Demo: 1, HashSlots: 2,
		Logger: testLogger(t),
	})
	if s.Member.Mode() != lobby.NodeMaintenance || !strings.Contains(s.Member.Maintenance(), "database schema 10") {
		t.Fatalf("mode %s (%q), want maintenance", s.Member.Mode(), s.Member.Maintenance())
	}
	admin := login(t, base, "admin", adminPW)
	admin.want(201, "POST", "/api/v1/users", map[string]any{"username": "bob", "password": "bob password 1", "role": "operator"}, nil)
	var e apiError
	(&apiClient{t: t, base: base}).want(503, "POST", "/api/v1/login", map[string]string{"username": "bob", "password": "bob password 1"}, &e)
	if e.Error.Code != "maintenance" {
		t.Fatalf("an operator's sign-in in maintenance mode: %+v", e)
	}
	var nodes list
	admin.want(200, "GET", "/api/v1/nodes", nil, &nodes)
	if len(nodes.Items) != 1 || nodes.Items[0]["mode"] != "maintenance" || nodes.Items[0]["leader"] != false {
		t.Fatalf("nodes in maintenance mode = %+v", nodes.Items)
	}
	// Nothing stocks the demo pool.
	var pool map[string]any
	admin.want(200, "GET", "/api/v1/pools/demo", nil, &pool)
	if n := pool["counts"].(map[string]any)["total"]; n != float64(0) {
		t.Fatalf("the demo pool has %v desktops in maintenance mode: someone ran the singleton duties", n)
	}

	db, err = sqlite.Open(t.Context(), filepath.Join(data, "lobby.db"), nil) // migrates
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	eventually(t, "the node leaves maintenance mode and leads", func() bool {
		return s.Member.Mode() == lobby.NodeNormal && s.Member.Leader()
	})
	bob := login(t, base, "bob", "bob password 1")
	var grant struct{ Desktop struct{ ID string } }
	eventually(t, "bob connects to a demo desktop the work queue made", func() bool {
		return bob.call("POST", "/api/v1/connect", map[string]string{"pool": "demo"}, &grant) == 200
	})

	// A newer release contracts the schema under the running node, then
	// it is compatible again: the work queue stops and runs again.
	db, err = sqlite.Open(t.Context(), filepath.Join(data, "lobby.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	floor := func(v int64) {
		if _, err := db.Writer().Exec(`UPDATE schema_compat SET floor_version = ?`, v); err != nil {
			t.Fatal(err)
		}
	}
	floor(sqlstore.SchemaVersion + 1)
	eventually(t, "the node goes to maintenance mode", func() bool { return s.Member.Mode() == lobby.NodeMaintenance })
	(&apiClient{t: t, base: base}).want(503, "POST", "/api/v1/login", map[string]string{"username": "bob", "password": "bob password 1"}, &e)
	if !strings.Contains(e.Error.Message, "upgrade this node") {
		t.Errorf("refusal on a contracted schema: %q", e.Error.Message)
	}
	floor(0)
	eventually(t, "the node is back to normal", func() bool { return s.Member.Mode() == lobby.NodeNormal })
	var job struct{ Job struct{ ID string } }
	admin.want(202, "POST", "/api/v1/desktops/"+grant.Desktop.ID+"/actions", map[string]string{"action": "restart"}, &job)
	eventually(t, "the restart job completes", func() bool {
		var j struct{ State string }
		return admin.call("GET", "/api/v1/jobs/"+job.Job.ID, nil, &j) == 200 && j.State == "completed"
	})
}
