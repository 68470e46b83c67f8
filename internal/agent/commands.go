package agent

import (
	"encoding/json"
	"errors"
	"os"
	"sort"
	"sync"
	"time"

	"lobby/internal/datadir"
	"lobby/internal/linkproto"
)

// commandLog remembers the commands this host has run, by (ID, Op), so
// that a command resent after a dropped link is answered from memory
// instead of run twice. It survives the agent's restart (a file in the
// data directory). Only successes are remembered: a failed command did
// not happen, and its retry should run it.
type commandLog struct {
	path string

	mu      sync.Mutex
	done    map[string]doneCommand
	running map[string]chan struct{}
}

type doneCommand struct {
	At     time.Time        `json:"at"`
	Result linkproto.Result `json:"result"`
}

// Bounds of the memory: a node retries a command within minutes.
const (
	keepCommands   = 1000
	keepCommandAge = 24 * time.Hour
)

func openCommandLog(path string) (*commandLog, error) {
	c := &commandLog{path: path, done: map[string]doneCommand{}, running: map[string]chan struct{}{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &c.done); err != nil {
		// A torn file loses the memory, not the agent: start afresh.
		c.done = map[string]doneCommand{}
	}
	return c, nil
}

// run runs fn once per key; concurrent and later calls with the same key
// get the first successful result. An empty key always runs.
func (c *commandLog) run(key string, fn func() linkproto.Result) (res linkproto.Result, repeated bool) {
	if key == "" {
		return fn(), false
	}
	for {
		c.mu.Lock()
		if d, ok := c.done[key]; ok {
			c.mu.Unlock()
			return d.Result, true
		}
		ch, busy := c.running[key]
		if !busy {
			break // still locked
		}
		c.mu.Unlock()
		<-ch
	}
	ch := make(chan struct{})
	c.running[key] = ch
	c.mu.Unlock()
	res = fn()
	c.mu.Lock()
	delete(c.running, key)
	if res.Error == nil {
		c.done[key] = doneCommand{At: time.Now(), Result: res}
		c.prune()
		c.saveLocked()
	}
	c.mu.Unlock()
	close(ch)
	return res, false
}

func (c *commandLog) prune() {
	cutoff := time.Now().Add(-keepCommandAge)
	for k, d := range c.done {
		if d.At.Before(cutoff) {
			delete(c.done, k)
		}
	}
	if len(c.done) <= keepCommands {
		return
	}
	keys := make([]string, 0, len(c.done))
	for k := range c.done {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return c.done[keys[i]].At.Before(c.done[keys[j]].At) })
	for _, k := range keys[:len(keys)-keepCommands] {
		delete(c.done, k)
	}
}

func (c *commandLog) saveLocked() {
	b, err := json.Marshal(c.done)
	if err == nil {
		err = datadir.WriteFile(c.path, b, 0o600)
	}
	_ = err // losing the memory only weakens deduplication; the next save retries
}
