package local

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
)

// procStat is what the provider reads of a process from /proc/PID/stat.
type procStat struct {
	pid, ppid, pgrp int
	state           byte   // R, S, D, T (stopped), t, Z (zombie), X, I ...
	start           uint64 // field 22: clock ticks after boot
	uid             uint32 // owner of /proc/PID: the effective uid
}

// parseStat parses the contents of /proc/PID/stat. The command name (field
// 2) is in parentheses and may itself hold spaces and parentheses, so the
// fields after it are found from the last ')'.
func parseStat(b []byte) (procStat, error) {
	open := bytes.IndexByte(b, '(')
	end := bytes.LastIndexByte(b, ')')
	if open < 1 || end < open {
		return procStat{}, errors.New("malformed /proc stat")
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(b[:open])))
	if err != nil {
		return procStat{}, fmt.Errorf("malformed /proc stat pid: %w", err)
	}
	f := bytes.Fields(b[end+1:]) // f[0] is field 3 (state)
	if len(f) < 20 || len(f[0]) != 1 {
		return procStat{}, errors.New("malformed /proc stat: too few fields")
	}
	ps := procStat{pid: pid, state: f[0][0]}
	ppid, err1 := strconv.Atoi(string(f[1]))
	pgrp, err2 := strconv.Atoi(string(f[2]))
	start, err3 := strconv.ParseUint(string(f[19]), 10, 64)
	if err := errors.Join(err1, err2, err3); err != nil {
		return procStat{}, fmt.Errorf("malformed /proc stat: %w", err)
	}
	ps.ppid, ps.pgrp, ps.start = ppid, pgrp, start
	return ps, nil
}

// readStat reads one process; an error means it does not exist (now).
func readStat(pid int) (procStat, error) {
	dir := "/proc/" + strconv.Itoa(pid)
	b, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return procStat{}, err
	}
	ps, err := parseStat(b)
	if err != nil {
		return procStat{}, err
	}
	if fi, err := os.Stat(dir); err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			ps.uid = st.Uid
		}
	}
	return ps, nil
}

// dead reports whether a process state means it has exited.
func dead(state byte) bool { return state == 'Z' || state == 'X' || state == 'x' }

// procKey identifies one process over time: pids are reused, start times
// tell them apart.
type procKey struct {
	PID   int    `json:"pid"`
	Start uint64 `json:"start_time"`
}

// status returns the live process k names, or false when it has exited,
// is a zombie, or its pid now belongs to another process.
func (k procKey) status() (procStat, bool) {
	if k.PID <= 0 {
		return procStat{}, false
	}
	ps, err := readStat(k.PID)
	if err != nil || ps.start != k.Start || dead(ps.state) {
		return procStat{}, false
	}
	return ps, true
}

func (k procKey) alive() bool { _, ok := k.status(); return ok }

// scanProcs reads every process on the machine.
func scanProcs() ([]procStat, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	out := make([]procStat, 0, len(ents))
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ps, err := readStat(pid); err == nil && !dead(ps.state) {
			out = append(out, ps)
		}
	}
	return out, nil
}

// family returns the live processes of a desktop run as uid: the recorded
// roots, the members of their process groups, every process of uid when
// byUID (a user of this desktop alone), and all their descendants. The
// agent's own process and init are never included.
//
// Each root was started as the leader of its own process group, and the
// kernel does not reuse a pid while a group still bears it, so a group
// outlives its leader. A dead root's group is still the desktop's when no
// process holds the root's pid; if one does, the pid was reused and the
// group is someone else's. Group members must also run as uid.
func family(roots []procKey, byUID bool, uid uint32) []procKey {
	all, err := scanProcs()
	if err != nil {
		return nil
	}
	self, selfGroup := os.Getpid(), syscall.Getpgrp()
	in := map[int]bool{}
	groups := map[int]bool{}
	for _, r := range roots {
		if r.PID <= 1 || r.PID == selfGroup {
			continue
		}
		if r.alive() {
			in[r.PID], groups[r.PID] = true, true
		} else if _, err := readStat(r.PID); err != nil {
			groups[r.PID] = true
		}
	}
	for _, ps := range all {
		if ps.uid == uid && (groups[ps.pgrp] || byUID) {
			in[ps.pid] = true
		}
	}
	for changed := true; changed; {
		changed = false
		for _, ps := range all {
			if !in[ps.pid] && in[ps.ppid] {
				in[ps.pid], changed = true, true
			}
		}
	}
	var out []procKey
	for _, ps := range all {
		if in[ps.pid] && ps.pid != self && ps.pid > 1 {
			out = append(out, procKey{PID: ps.pid, Start: ps.start})
		}
	}
	return out
}

// signalAll sends sig to each live process of keys and to the process
// groups they lead.
func signalAll(keys []procKey, sig syscall.Signal) {
	selfGroup := syscall.Getpgrp()
	for _, k := range keys {
		ps, ok := k.status()
		if !ok {
			continue
		}
		if ps.pgrp == k.PID && k.PID != selfGroup {
			_ = syscall.Kill(-k.PID, sig)
		}
		_ = syscall.Kill(k.PID, sig)
	}
}

// anyAlive reports whether any process of keys is still alive.
func anyAlive(keys []procKey) bool {
	for _, k := range keys {
		if k.alive() {
			return true
		}
	}
	return false
}
