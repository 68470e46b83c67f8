// Package lobby holds Lobby's domain: the types every other package speaks
// (hosts, desktops, pools, policies, users, assignments, audit events), their
// validation rules, and the one error type users see. It does no I/O.
package lobby
