// Package jobs is the work queue: power and provisioning run here, in
// workers of a River queue kept in the store (SQLite or PostgreSQL), never
// in HTTP handlers. Every job belongs to a site ID, and a dead node's jobs
// are taken over by the live ones.
//
// # Ownership
//
// A job waits in the River queue "site-N" of the node that should run it:
// the node whose hub holds the link of the job's host (hosts.site_id), or,
// when that node is not alive, the node that enqueued it. Each node works
// its own queue (and "default", where releases before site queues put
// every job). A node that finds its job's host linked to another live node
// hands the job over to that node's queue without spending an attempt.
// River's client ID is "site-N/INSTANCE", the process instance of
// cluster.Member, so a running job's attempted_by names the process that
// runs it, not only its site.
//
// # Takeover
//
//	enqueue ─▶ available in site-N ─fetch by N─▶ running on N
//	                                             (attempt a, site-N/INSTANCE)
//	                                                       │
//	          the leader sees N's heartbeat stand still    │
//	          for TakeoverAfter, or N's row gone, or N's   │
//	          process replaced (another INSTANCE)          ▼
//	available again (attempt a spent) in the queue of the host's link
//	holder, else the leader's; noted in the job (lobby_takeovers) and in
//	the audit log. An operator's reassign does the same at once for a
//	dead site; delete drops its jobs.
//
// Every node watches the nodes' heartbeats (by its own monotonic clock: a
// heartbeat that stopped changing, not a timestamp compared across
// machines); the node holding the singleton lease acts. The pending jobs
// of a dead site move with its running ones. So do the pending jobs of a
// node that is alive but takes no work (draining: it finishes what it
// runs; in maintenance mode: its queue is stopped), and new jobs for its
// hosts go to the enqueuing node, which reaches them through node links.
//
// # Failure rules
//
//  1. No job is lost: a job leaves a dead site's queue only by a
//     conditional update (same state, attempt and queue as seen), so two
//     leaders in a row, or a leader and an operator, cannot drop it.
//  2. No command runs twice on a host: a job's commands carry IDs derived
//     from the job ID ("job-ID"), the same at every attempt, and agents
//     answer a command they already ran (or are running) from memory.
//  3. A late completion is dropped: each attempt records the token
//     "attempt@client" when it finishes (river.MetadataSet in a worker
//     middleware), and a trigger on river_job (migration 00013) ignores an
//     update that brings a token other than the current attempt's of a
//     running job. A node thought dead that finishes after its job was
//     taken over therefore changes nothing.
//  4. A fenced node stops: when another process took this node's site ID
//     (cluster.Member.Lost), its workers are cancelled at once and it
//     fetches nothing more.
package jobs
