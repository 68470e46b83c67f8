//go:build race

package storetest

// raceEnabled: the race detector slows the transpiled SQLite tenfold, so
// the longest tests do fewer rounds.
const raceEnabled = true
