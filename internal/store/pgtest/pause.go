package pgtest

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Pause stops the server and every one of its processes (SIGSTOP), as a
// database whose host froze: connections stay open and nothing answers,
// not even a new connection. Resume lets them go on. (PostgreSQL's
// processes each start a session of their own, so the postmaster's
// process group does not hold them: they are found by parent.)
func (s *Server) Pause() error {
	pid := s.cmd.Process.Pid
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil { // first: no new backends
		return fmt.Errorf("pgtest: stop the server: %w", err)
	}
	return signalChildren(pid, syscall.SIGSTOP)
}

// Resume undoes Pause.
func (s *Server) Resume() error {
	pid := s.cmd.Process.Pid
	if err := signalChildren(pid, syscall.SIGCONT); err != nil {
		return err
	}
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		return fmt.Errorf("pgtest: continue the server: %w", err)
	}
	return nil
}

// signalChildren signals the processes whose parent is ppid.
func signalChildren(ppid int, sig syscall.Signal) error {
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		return err
	}
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // gone
		}
		// pid (comm) state ppid ...: comm may hold spaces, so split after ')'.
		i := strings.LastIndexByte(string(b), ')')
		fields := strings.Fields(string(b[i+1:]))
		if len(fields) < 2 || fields[1] != strconv.Itoa(ppid) {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(f)))
		if err := syscall.Kill(pid, sig); err != nil && err != syscall.ESRCH {
			return fmt.Errorf("pgtest: signal %v to server process %d: %w", sig, pid, err)
		}
	}
	return nil
}
