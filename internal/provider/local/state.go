package local

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"lobby/internal/datadir"
	"lobby/internal/lobby"
)

// Process roles in state.
const (
	roleXvnc    = "xvnc"
	roleSession = "session"
)

// procRecord is one process a desktop started.
type procRecord struct {
	Role    string `json:"role"`
	Command string `json:"command"`
	procKey
}

// state is what state.json holds of one desktop. It never holds the VNC
// secret.
type state struct {
	Name        string           `json:"name"`
	Template    string           `json:"template"`
	User        string           `json:"user"`
	UID         uint32           `json:"uid"`
	GID         uint32           `json:"gid"`
	UserCreated bool             `json:"user_created"` // a per-desktop user, removed at Delete
	Desired     lobby.PowerState `json:"desired_power"`
	Display     int              `json:"display,omitempty"`
	Port        int              `json:"port,omitempty"`
	Procs       []procRecord     `json:"processes,omitempty"`
	Created     time.Time        `json:"created"`
}

// xvnc returns the recorded Xvnc process, if any.
func (s *state) xvnc() (procKey, bool) {
	for _, p := range s.Procs {
		if p.Role == roleXvnc {
			return p.procKey, true
		}
	}
	return procKey{}, false
}

// keys returns the recorded processes.
func (s *state) keys() []procKey {
	out := make([]procKey, len(s.Procs))
	for i, p := range s.Procs {
		out[i] = p.procKey
	}
	return out
}

// Files in a desktop's directory.
const (
	stateFile   = "state.json"
	passwdFile  = "passwd"
	xauthFile   = "Xauthority"
	xvncLog     = "xvnc.log"
	sessionLog  = "session.log"
	homeDirName = "home"
)

// saveState writes st to dir/state.json atomically, readable by the
// agent only.
func saveState(dir string, st *state) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := datadir.WriteFile(filepath.Join(dir, stateFile), append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	return nil
}

// loadState reads dir/state.json.
func loadState(dir string) (*state, error) {
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		return nil, err
	}
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, stateFile), err)
	}
	if st.Name != filepath.Base(dir) {
		return nil, fmt.Errorf("%s: names desktop %q, not %q", filepath.Join(dir, stateFile), st.Name, filepath.Base(dir))
	}
	return &st, nil
}
