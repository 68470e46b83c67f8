//go:build lobby_contractrelease

package sqlstore

const testReleaseVersion = 9002

var testMigrations = []testMigration{expandNote, contractNote}
