package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"lobby/internal/lobby"
	"lobby/internal/provider"
	"lobby/internal/rfb"
)

// Create makes a stopped desktop from a template: its user (when per
// desktop), its state directory, a home copied from
// StateDir/templates/<template>/ (or, for "default" without such a
// directory, a small .twmrc and .Xresources), a new VNC secret and X
// cookie. It returns a KindConflict error when the name exists and a
// KindInvalid error for a bad name or an unknown template; a failed Create
// leaves nothing behind.
func (p *Provider) Create(ctx context.Context, spec provider.Spec) (provider.Desktop, error) {
	if err := lobby.ValidName("desktop", spec.Name); err != nil {
		return provider.Desktop{}, err
	}
	if spec.Template == "" {
		spec.Template = "default"
	}
	if err := lobby.ValidName("template", spec.Template); err != nil {
		return provider.Desktop{}, err
	}
	tmplDir := filepath.Join(p.cfg.StateDir, "templates", spec.Template)
	if fi, err := os.Stat(tmplDir); err != nil || !fi.IsDir() {
		if spec.Template != "default" {
			return provider.Desktop{}, lobby.Errorf(lobby.KindInvalid, "template %q not found: create the directory %s holding the files a new desktop's home starts with, or use \"default\"", spec.Template, tmplDir)
		}
		tmplDir = ""
	}
	d, err := p.reserve(spec)
	if err != nil {
		return provider.Desktop{}, err
	}
	defer d.op.Unlock()
	if err := p.provision(ctx, d, tmplDir); err != nil {
		p.abandon(d)
		return provider.Desktop{}, fmt.Errorf("create desktop %s: %w", spec.Name, err)
	}
	p.log.Info("desktop created", "desktop", spec.Name, "template", spec.Template, "user", d.st.User)
	p.mu.Lock()
	defer p.mu.Unlock()
	return d.view(), nil
}

// reserve adds a desktop in memory with its operation lock held, so that
// no other operation sees it half made.
func (p *Provider) reserve(spec provider.Spec) (*desktop, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, errClosed
	}
	dir := filepath.Join(p.desktopsDir, spec.Name)
	if _, ok := p.desktops[spec.Name]; ok {
		return nil, lobby.Errorf(lobby.KindConflict, "desktop %s already exists", spec.Name)
	}
	if _, err := os.Lstat(dir); err == nil {
		return nil, lobby.Errorf(lobby.KindConflict, "desktop %s already exists on disk but cannot be read: see the agent's log, or remove %s", spec.Name, dir)
	}
	d := &desktop{dir: dir, st: &state{
		Name: spec.Name, Template: spec.Template, Desired: lobby.PowerStopped,
		User: p.id.name, UID: p.id.uid, GID: p.id.gid, Created: time.Now().UTC(),
	}}
	d.op.Lock()
	p.desktops[spec.Name] = d
	return d, nil
}

// provision makes the user and files of a reserved desktop.
func (p *Provider) provision(ctx context.Context, d *desktop, tmplDir string) error {
	home := filepath.Join(d.dir, homeDirName)
	if p.id.perDesktop {
		name := desktopUser(p.cfg.StateDir, d.st.Name)
		uid, gid, err := createUser(ctx, name, home, d.st.Name)
		if err != nil {
			return err
		}
		p.mu.Lock()
		d.st.User, d.st.UID, d.st.GID, d.st.UserCreated = name, uid, gid, true
		p.mu.Unlock()
	}
	if err := os.Mkdir(d.dir, 0o755); err != nil {
		return err
	}
	if err := os.Chmod(d.dir, 0o755); err != nil { // whatever the umask
		return err
	}
	p.mu.Lock()
	err := d.save()
	p.mu.Unlock()
	if err != nil {
		return err
	}
	if err := os.Mkdir(home, 0o700); err != nil {
		return err
	}
	if err := p.chown(home, d); err != nil {
		return err
	}
	if tmplDir != "" {
		if err := p.copyTemplate(tmplDir, home, d); err != nil {
			return fmt.Errorf("copy template: %w", err)
		}
	} else if err := p.writeDefaultHome(home, d); err != nil {
		return err
	}
	if err := p.writeOwned(filepath.Join(d.dir, passwdFile), rfb.EncryptPassword(rfb.RandomPassword()), d); err != nil {
		return err
	}
	return p.writeOwned(filepath.Join(d.dir, xauthFile), xauthority(), d)
}

// abandon undoes a failed Create.
func (p *Provider) abandon(d *desktop) {
	if err := os.RemoveAll(d.dir); err != nil {
		p.log.Warn("remove failed desktop", "dir", d.dir, "err", err)
	}
	p.mu.Lock()
	created, user := d.st.UserCreated, d.st.User
	d.gone = true
	delete(p.desktops, d.st.Name)
	p.mu.Unlock()
	if created {
		if err := deleteUser(context.Background(), user); err != nil {
			p.log.Warn("remove user of failed desktop", "user", user, "err", err)
		}
	}
}

// Delete stops a desktop and removes its state directory and, when it had
// its own, its system user. Deleting a missing desktop succeeds.
func (p *Provider) Delete(ctx context.Context, name string) error {
	d, err := p.lockOp(name)
	if errors.Is(err, provider.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	defer d.op.Unlock()
	if err := p.stopLocked(ctx, d); err != nil {
		return err
	}
	p.mu.Lock()
	created, user := d.st.UserCreated, d.st.User
	p.mu.Unlock()
	if created {
		if err := deleteUser(ctx, user); err != nil {
			return err
		}
	}
	if err := os.RemoveAll(d.dir); err != nil {
		return fmt.Errorf("delete desktop %s: %w", name, err)
	}
	p.mu.Lock()
	d.gone = true
	delete(p.desktops, name)
	p.mu.Unlock()
	p.log.Info("desktop deleted", "desktop", name)
	return nil
}

// chown gives path to the desktop's user when the agent is root.
func (p *Provider) chown(path string, d *desktop) error {
	if os.Geteuid() != 0 {
		return nil
	}
	return os.Lchown(path, int(d.st.UID), int(d.st.GID))
}

// writeOwned writes a new 0600 file owned by the desktop's user.
func (p *Provider) writeOwned(path string, data []byte, d *desktop) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return p.chown(path, d)
}

// Default home files for the "default" template.
const (
	defaultTwmrc = `# Written by Lobby for a new desktop.
NoGrabServer
RandomPlacement
DecorateTransients
TitleFont "fixed"
ResizeFont "fixed"
MenuFont "fixed"
IconFont "fixed"
IconManagerFont "fixed"
Color
{
    BorderColor "slategrey"
    DefaultBackground "steelblue"
    DefaultForeground "white"
    TitleBackground "steelblue"
    TitleForeground "white"
    MenuBackground "steelblue"
    MenuForeground "white"
    MenuTitleBackground "white"
    MenuTitleForeground "steelblue"
}
Button1 = : root : f.menu "lobby"
Button1 = : title : f.move
Button3 = : title : f.lower
menu "lobby"
{
    "Desktop"  f.title
    "Terminal" f.exec "exec xterm &"
    "Refresh"  f.refresh
}
`
	defaultXresources = `! Written by Lobby for a new desktop.
XTerm*vt100.geometry: 100x32+40+40
XTerm*background: black
XTerm*foreground: gray90
XTerm*scrollBar: true
XTerm*saveLines: 5000
`
)

// writeDefaultHome writes the default template's files.
func (p *Provider) writeDefaultHome(home string, d *desktop) error {
	for name, content := range map[string]string{".twmrc": defaultTwmrc, ".Xresources": defaultXresources} {
		path := filepath.Join(home, name)
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			return err
		}
		if err := p.chown(path, d); err != nil {
			return err
		}
	}
	return nil
}

// copyTemplate copies the tree src into home (directories, regular files
// and symbolic links, keeping modes), owned by the desktop's user.
func (p *Provider) copyTemplate(src, home string, d *desktop) error {
	return filepath.WalkDir(src, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil || rel == "." {
			return err
		}
		dst := filepath.Join(home, rel)
		info, err := e.Info()
		if err != nil {
			return err
		}
		switch {
		case e.IsDir():
			err = os.Mkdir(dst, info.Mode().Perm())
		case e.Type()&fs.ModeSymlink != 0:
			var target string
			if target, err = os.Readlink(path); err == nil {
				err = os.Symlink(target, dst)
			}
		case e.Type().IsRegular():
			err = copyFile(path, dst, info.Mode().Perm())
		default:
			return nil // devices, sockets, pipes: not part of a home
		}
		if err != nil {
			return err
		}
		return p.chown(dst, d)
	})
}

func copyFile(src, dst string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
