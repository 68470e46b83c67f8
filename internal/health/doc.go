// Package health checks a Lobby cluster the way an HA health check should,
// and keeps each node honest about its own health.
//
// Three parts:
//
//   - The watchdog (Watchdog) is a node's judgement of itself: the store
//     must answer within StoreLimit and the node's loops (its own ticker,
//     the health monitor, the cluster heartbeat) must keep running within
//     LoopLimit. While either fails, /readyz answers 503 with the reason,
//     so the load balancer stops sending the node people; once the cause
//     goes away it answers 200 again, with no restart:
//
//     ready ──store silent > StoreLimit, or a loop stalled > LoopLimit──▶ not ready
//     not ready ──store answers again and every loop runs──▶ ready
//
//   - The monitor (Monitor) runs on every node, once a second: it reads
//     the database's clock (so every node's clock is compared with one
//     reference, never with each other), probes every node's advertised
//     address (GET /api/v1/health/ping, itself included), and records in
//     the store what only it can know: its clock skew, its store round
//     trip, its watchdog verdict, its link certificate, the probes and its
//     agents' links (store.NodeHealth).
//
//   - The check (Gather, then Evaluate) reads those records, the nodes,
//     the lease and the hosts from the store, unseals the cluster CA with
//     the cluster key, probes each node's address itself, and turns the
//     facts into checks, each ok, warn or fail, each failure with its
//     likely cause and its fix. `lobby health` runs it against the
//     database; GET /api/v1/health and the Cluster health page run it
//     from a node. Evaluate is pure: the rules are tested on facts alone.
//
// Times that are compared across machines are compared on the database's
// clock: a node is alive when its record is fresh by the database's clock,
// and its heartbeat is corrected by its measured skew.
package health
