package local

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// tcpListen is the state of a listening socket in /proc/net/tcp.
const tcpListen = "0A"

// listensOn reports whether process pid holds a socket listening on TCP
// port. A connection that succeeds proves only that someone listens: a
// desktop started by another agent on the machine may have bound the
// port between our check and our Xvnc's bind.
func listensOn(pid, port int) (bool, error) {
	inodes := map[string]bool{}
	for _, f := range []string{"tcp", "tcp6"} {
		if err := listeningInodes(fmt.Sprintf("/proc/%d/net/%s", pid, f), port, inodes); err != nil {
			return false, err
		}
	}
	if len(inodes) == 0 {
		return false, nil
	}
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return false, err
	}
	for _, e := range ents {
		target, err := os.Readlink(dir + "/" + e.Name())
		if err != nil {
			continue // closed since ReadDir
		}
		if inode, ok := strings.CutPrefix(target, "socket:["); ok && inodes[strings.TrimSuffix(inode, "]")] {
			return true, nil
		}
	}
	return false, nil
}

// listeningInodes adds to inodes those of the sockets in a /proc/net/tcp
// style file that listen on port. A missing file (no IPv6) adds none.
func listeningInodes(path string, port int, inodes map[string]bool) error {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	s.Scan() // header
	for s.Scan() {
		// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
		fields := strings.Fields(s.Text())
		if len(fields) < 10 || fields[3] != tcpListen {
			continue
		}
		_, hexPort, ok := strings.Cut(fields[1], ":")
		if !ok {
			continue
		}
		if p, err := strconv.ParseUint(hexPort, 16, 16); err == nil && int(p) == port {
			inodes[fields[9]] = true
		}
	}
	return s.Err()
}
