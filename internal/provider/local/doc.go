// Package local is the provider that runs real X desktops on the agent's
// machine: each desktop is a TigerVNC Xvnc display plus a session that
// draws (twm and xterm by default), run as an unprivileged user, never as
// root.
//
// # Layout on disk
//
//	StateDir/
//	  lock                        flock held by the one provider using the dir
//	  templates/<template>/       copied into a new desktop's home
//	  desktops/<name>/            0755, owned by the agent
//	    state.json                0600: name, template, user, desired power,
//	                              display, port, and each process's pid and
//	                              start time (field 22 of /proc/PID/stat)
//	    passwd                    0600, desktop user: the VNC secret in
//	                              vncpasswd form; never leaves this directory
//	    Xauthority                0600, desktop user: the X cookie
//	    xvnc.log, session.log     output of the processes
//	    home/                     0700, desktop user: the session's HOME
//
// # Users
//
// With RunAsUser set, every desktop runs as that user. Otherwise an agent
// running as root creates one system user per desktop at Create (see
// desktopUser: "lobby-" plus a short form of the name and a hash of the
// state directory and name) and removes it at Delete; an agent that is not
// root runs desktops as itself.
//
// # Power states and supervision
//
//	          Create            Start              Suspend
//	(none) ───────────▶ stopped ──────▶ running ───────────▶ suspended
//	                       ▲  ▲           │  ▲     Resume        │
//	                       │  └───Stop────┘  └───────────────────┘
//	                       └─────────Stop / Xvnc died───────────┘
//
// The reported power comes from /proc, not from memory: a desktop is
// running while its recorded Xvnc pid is alive (present, not a zombie, with
// the recorded start time, since pids are reused), suspended when that
// process is stopped (state 'T'), and stopped otherwise. Processes started
// by this run are reaped by a goroutine each; processes adopted from an
// earlier run are watched through /proc. When Xvnc dies unexpectedly the
// session's processes are killed, stale X lock files removed, and the
// desktop is stopped. Close stops supervising only: desktops keep running,
// and the next provider on the same StateDir re-adopts them.
package local
