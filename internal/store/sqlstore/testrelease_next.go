//go:build lobby_nextrelease && !lobby_contractrelease

package sqlstore

const testReleaseVersion = 9001

var testMigrations = []testMigration{expandNote}
