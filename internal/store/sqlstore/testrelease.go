//go:build !lobby_nextrelease && !lobby_contractrelease

package sqlstore

// A release build has no test migrations (see testrelease_tagged.go).
const testReleaseVersion = 0

var testMigrations []testMigration
