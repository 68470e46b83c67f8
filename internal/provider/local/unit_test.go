package local

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"lobby/internal/lobby"
)

func TestParseStat(t *testing.T) {
	t.Parallel()
	// The command name may hold spaces and parentheses.
	line := "4242 (evil) R (x) T 4000 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10 18446744073709551615\n"
	ps, err := parseStat([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if ps.pid != 4242 || ps.state != 'T' || ps.ppid != 4000 || ps.pgrp != 4242 || ps.start != 987654 {
		t.Fatalf("parseStat = %+v", ps)
	}
	for _, bad := range []string{"", "12 (x", "x (y) R 1 2", "12 (x) R 1 2 3"} {
		if _, err := parseStat([]byte(bad)); err == nil {
			t.Errorf("parseStat(%q): no error", bad)
		}
	}
	self, err := readStat(os.Getpid())
	if err != nil || self.pid != os.Getpid() || self.start == 0 || dead(self.state) {
		t.Fatalf("readStat(self) = %+v, %v", self, err)
	}
	if !(procKey{PID: self.pid, Start: self.start}).alive() {
		t.Fatal("this process is not alive")
	}
	if (procKey{PID: self.pid, Start: self.start + 1}).alive() {
		t.Fatal("a process with another start time is alive: pid reuse not detected")
	}
}

func TestDesktopUser(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, dir := range []string{"/var/lib/lobby", "/srv/other"} {
		for _, name := range []string{"a", "demo-1", "a.very.long_desktop-name-that-goes-on-and-on-to-63-characters-x", "a.very.long_desktop-name-that-goes-on-and-on-to-63-characters-y"} {
			u := desktopUser(dir, name)
			if len(u) > 32 || !strings.HasPrefix(u, "lobby-") || strings.ContainsAny(u, "._") {
				t.Errorf("desktopUser(%q) = %q", name, u)
			}
			if u != desktopUser(dir, name) {
				t.Errorf("desktopUser(%q) is not deterministic", name)
			}
			if seen[u] {
				t.Errorf("desktopUser(%q, %q) = %q collides", dir, name, u)
			}
			seen[u] = true
		}
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	if _, err := New(Config{}); lobby.ErrorKind(err) != lobby.KindInvalid {
		t.Errorf("New without StateDir: %v", err)
	}
	_, err := New(Config{StateDir: t.TempDir(), Xvnc: "/nonexistent/Xvnc"})
	if err == nil || !strings.Contains(err.Error(), "apt-get install tigervnc-standalone-server twm xterm") || !strings.Contains(err.Error(), "make run") {
		t.Errorf("New without Xvnc: %v", err)
	}
	xvnc, _ := os.Executable() // any executable passes the lookup
	for _, c := range []Config{
		{Geometry: "big"}, {Geometry: "1280x"}, {Geometry: "8x8"},
		{PortMin: 100}, {PortMin: 2000, PortMax: 1999}, {DisplayMin: 5, DisplayMax: 4},
		{Depth: 12}, {Session: [][]string{{}}}, {RunAsUser: "root"},
		{RunAsUser: "lobby-no-such-user-here"},
	} {
		c.StateDir, c.Xvnc = t.TempDir(), xvnc
		if err := c.validate(); err == nil {
			_, err = c.resolveIdentity()
			if err == nil {
				t.Errorf("Config %+v: no error", c)
			}
		}
	}
	c := Config{StateDir: "rel", Xvnc: xvnc}
	if err := c.validate(); err != nil || !filepath.IsAbs(c.StateDir) || c.Geometry != "1280x800" || c.Depth != 24 || c.PortMin != 15900 || c.DisplayMax != 999 {
		t.Errorf("defaults: %+v, %v", c, err)
	}
}

func TestCheckTraversable(t *testing.T) {
	t.Parallel()
	private := t.TempDir() // its parent is 0700
	if err := os.Chmod(private, 0o700); err != nil {
		t.Fatal(err)
	}
	err := checkTraversable(private)
	if lobby.ErrorKind(err) != lobby.KindInvalid || !strings.Contains(err.Error(), "chmod 0755") {
		t.Fatalf("checkTraversable(0700 dir): %v", err)
	}
	if err := checkTraversable("/usr/bin"); err != nil {
		t.Fatal(err)
	}
}

func TestXauthority(t *testing.T) {
	t.Parallel()
	b := xauthority()
	fields := []int{}
	if binary.BigEndian.Uint16(b) != familyWild {
		t.Fatalf("family %x", b[:2])
	}
	for rest := b[2:]; len(rest) > 0; {
		n := int(binary.BigEndian.Uint16(rest))
		fields = append(fields, n)
		rest = rest[2+n:]
	}
	if len(fields) != 4 || fields[0] != 0 || fields[1] != 0 || fields[2] != len("MIT-MAGIC-COOKIE-1") || fields[3] != 16 {
		t.Fatalf("xauthority field lengths %v", fields)
	}
	if string(xauthority()) == string(b) {
		t.Fatal("two cookies are equal")
	}
}

func TestFamily(t *testing.T) {
	t.Parallel()
	cmd := exec.Command("/bin/sh", "-c", "sleep 30 & sleep 30 & wait")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); cmd.Wait() })
	ps, err := readStat(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	root := procKey{PID: ps.pid, Start: ps.start}
	uid := uint32(os.Geteuid())
	var fam []procKey
	for deadline := time.Now().Add(30 * time.Second); len(fam) < 3 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		fam = family([]procKey{root}, false, uid)
	}
	if len(fam) != 3 {
		t.Fatalf("family of sh with two sleeps = %+v", fam)
	}
	// A root whose pid now belongs to another process names nothing.
	if got := family([]procKey{{PID: root.PID, Start: root.Start + 1}}, false, uid); len(got) != 0 {
		t.Fatalf("family of a reused pid = %+v, want none", got)
	}
	signalAll([]procKey{root}, syscall.SIGKILL)
	if !waitGone(context.Background(), fam, 5*time.Second) {
		t.Fatal("signalAll to the root did not reach its group")
	}
}

// TestWaitListeningOwnsThePort: Xvnc that lost its port to another
// process is a failed start (tried again elsewhere), even though the port
// accepts connections; one whose own socket listens has started.
func TestWaitListeningOwnsThePort(t *testing.T) {
	t.Parallel()
	other, err := net.Listen("tcp", "127.0.0.1:0") // the other agent's desktop
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	port := other.Addr().(*net.TCPAddr).Port
	p := &Provider{cfg: Config{StartTimeout: 20 * time.Second}}
	d := &desktop{dir: t.TempDir()}

	log, err := os.Create(filepath.Join(d.dir, xvncLog))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	loser := exec.Command("sh", "-c", "sleep 0.5; echo '_XSERVTransSocketINETCreateListener: ...SocketCreateListener() failed'; echo 'failed to bind socket: Address already in use'; exit 1")
	loser.Stdout = log
	if err := loser.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = loser.Wait(); close(exited) }()
	err = p.waitListening(context.Background(), d, loser.Process.Pid, port, exited)
	if !errors.Is(err, errAddrTaken) {
		t.Fatalf("an Xvnc that lost port %d to another process: err = %v, want errAddrTaken", port, err)
	}

	// This process holds the listener: it owns the port.
	if err := p.waitListening(context.Background(), d, os.Getpid(), port, nil); err != nil {
		t.Fatalf("the port's owner: %v", err)
	}
	if ok, err := listensOn(os.Getpid(), port+1); ok || err != nil {
		t.Fatalf("listensOn(self, a port it does not hold) = %v, %v", ok, err)
	}
}
