//go:build lobby_nextrelease || lobby_contractrelease

package sqlstore

// The test releases. `go build -tags lobby_nextrelease` makes release
// N+1 of the one in the tree: it knows one more migration, an expand one
// that earlier code does not notice. `-tags lobby_contractrelease` makes
// N+2: it also knows a contract migration, after which only binaries that
// know N+1 may run. The end-to-end upgrade test (internal/e2e) runs them
// side by side. Their versions are far above any real migration's.
var (
	expandNote = testMigration{Version: 9001, Name: "test release: add users.upgrade_note (expand)",
		Up:   `ALTER TABLE users ADD COLUMN upgrade_note TEXT NOT NULL DEFAULT ''`,
		Down: `ALTER TABLE users DROP COLUMN upgrade_note`}
	contractNote = testMigration{Version: 9002, Name: "test release: drop users.upgrade_note (contract)", Floor: 9001,
		Up:   `ALTER TABLE users DROP COLUMN upgrade_note`,
		Down: `ALTER TABLE users ADD COLUMN upgrade_note TEXT NOT NULL DEFAULT ''`}
)
