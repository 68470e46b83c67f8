// Package e2e holds Lobby's end-to-end tests: they build the lobby binary
// and run real nodes and host agents as separate processes on loopback,
// with real Xvnc desktops, and check what an operator and a user see
// through the API and the console gateway.
package e2e
