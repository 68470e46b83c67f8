// Package bench is Lobby's benchmark tool, behind `lobby bench`: harnesses
// that start a real node in this process (server.New with the in-memory
// provider, a benchmark and test tool that runs no desktops) or real
// processes (websockify, Xvnc, `lobby dev`), put load on them over
// loopback TCP, and report rates, latency percentiles, memory and where
// the CPU went. It is not used by a running node.
//
// Every harness is bounded in count and time and talks only to loopback
// addresses. The load generator runs in the same process as the node it
// measures and shares the machine's cores with it; reports say so and
// show its share of the CPU from a profile of the measured phase.
//
// Harnesses:
//
//   - assign (RunAssign): POST /connect then POST /release in a loop from
//     C clients; assignments per second and latency percentiles.
//   - login (RunLogin): a start-of-day storm of N sign-ins followed by a
//     connect, against the floor set by argon2id on this machine.
//   - gateway (RunGateway): throughput and added latency of /gateway/vnc
//     next to Debian's websockify in front of the same RFB source.
//   - memory (RunMemory): RSS of an idle node and Pss of one real desktop.
//   - link (RunLink): the console through node ⇄ link ⇄ agent next to the
//     gateway's in-process path, websockify and direct TCP.
//   - links (RunLinks): one node process holding thousands of agent links
//     from in-process agents (the real protocol): memory, CPU at the ping
//     interval, and the links' return after SIGKILL and a restart.
//   - takeover (RunTakeover): node processes on one PostgreSQL, one of
//     them killed while its jobs run on a slow host; the time until they
//     run on another node and until a new leader, and no job run twice.
package bench
