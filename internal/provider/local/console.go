package local

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"lobby/internal/lobby"
	"lobby/internal/rfb"
)

// DialConsole connects to a running desktop's Xvnc on the loopback and
// authenticates with the desktop's secret, read from its state directory;
// the stream returned is positioned after SecurityResult (the next bytes
// written are ClientInit). A desktop that is not running gives a
// KindConflict error; a refused secret an error wrapping rfb.ErrAuthFailed.
func (p *Provider) DialConsole(ctx context.Context, name string) (net.Conn, error) {
	d, err := p.lookup(name)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	pw, port := d.power(), d.st.Port
	p.mu.Unlock()
	if pw != lobby.PowerRunning {
		return nil, lobby.Errorf(lobby.KindConflict, "desktop %s is %s, not running: start or resume it first", name, pw)
	}
	file, err := os.ReadFile(filepath.Join(d.dir, passwdFile))
	if err != nil {
		return nil, fmt.Errorf("console of desktop %s: read secret: %w", name, err)
	}
	secret, err := rfb.DecryptPassword(file)
	if err != nil {
		return nil, fmt.Errorf("console of desktop %s: %w", name, err)
	}
	var dialer net.Dialer
	conn, err := dialer.DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return nil, fmt.Errorf("console of desktop %s: %w", name, err)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	err = rfb.ClientAuth(conn, secret)
	if !stop() {
		conn.Close()
		return nil, fmt.Errorf("console of desktop %s: %w", name, ctx.Err())
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("console of desktop %s: %w", name, err)
	}
	return conn, nil
}
