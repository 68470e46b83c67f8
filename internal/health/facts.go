package health

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"lobby/internal/cluster"
	"lobby/internal/lobby"
	"lobby/internal/store"
)

// nodeHealthSchema is the schema version that added the nodes' health
// records (migration 00011).
const nodeHealthSchema = 11

// Source is where a check gathers its facts.
type Source struct {
	Store store.Store
	// StoreErr is why the store could not be opened, instead of Store.
	StoreErr error
	// Database names the store for the report, without a password.
	Database string
	// From names who checks: "lobby health on HOST", or a node.
	From string
	// LoadCA returns the cluster CA's certificate (a node has it; `lobby
	// health` unseals it with the cluster key); an error is the cluster
	// key check's failure.
	LoadCA func(ctx context.Context) (*x509.Certificate, error)
	// Prober probes each node's address from where the check runs; nil
	// skips those probes.
	Prober *Prober
	// KnownSchema is the schema version this binary knows.
	KnownSchema int64
	// Now is the checker's clock; nil means time.Now.
	Now func() time.Time
}

// Facts is what a check knows of the cluster, gathered at one time.
type Facts struct {
	From     string
	Database string
	Dialect  string
	// StoreErr is why the store could not be read; nothing else is known
	// then.
	StoreErr error
	StoreRTT time.Duration
	// Now is the database's clock when the facts were gathered (the
	// checker's own when the store did not answer).
	Now         time.Time
	Schema      int64 // the database's schema version
	KnownSchema int64

	CA    *x509.Certificate
	CAErr error // from LoadCA; nil with CA nil means it was not asked

	Nodes  []lobby.Node
	Health map[int]store.NodeHealth // by site ID
	Lease  *store.Lease             // nil when never taken
	Hosts  []lobby.Host
	// HostsErr is why the hosts could not be read.
	HostsErr error
	// Probes are the checker's own probes of each node's address, by site
	// ID (nodes long dead are not probed).
	Probes map[int]Probe
}

// Gather reads the facts from the store and probes the nodes. A store that
// does not answer is a fact, not an error: the report says so.
func Gather(ctx context.Context, src Source) *Facts {
	now := time.Now
	if src.Now != nil {
		now = src.Now
	}
	f := &Facts{From: src.From, Database: src.Database, KnownSchema: src.KnownSchema, Now: now(), Health: map[int]store.NodeHealth{}, Probes: map[int]Probe{}}
	if src.StoreErr != nil {
		f.StoreErr = src.StoreErr
		return f
	}
	if err := f.read(ctx, src.Store, now); err != nil {
		f.StoreErr = err
		return f
	}
	if src.LoadCA != nil {
		f.CA, f.CAErr = src.LoadCA(ctx)
	}
	if src.Prober != nil {
		nodes, probes := probeRecent(ctx, src.Prober, f.Nodes, f.Now, 0)
		for i, n := range nodes {
			f.Probes[n.SiteID] = probes[i]
		}
	}
	return f
}

func (f *Facts) read(ctx context.Context, st store.Store, now func() time.Time) error {
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	f.Dialect = st.Dialect()
	t0 := now()
	db, err := st.DatabaseTime(sctx)
	if err != nil {
		return err
	}
	f.StoreRTT, f.Now = now().Sub(t0), db
	if f.Schema, err = st.SchemaVersion(sctx); err != nil {
		return err
	}
	if f.Nodes, err = st.ListNodes(sctx); err != nil {
		return err
	}
	if f.Schema >= nodeHealthSchema { // an older database has no records: its nodes warn
		hs, err := st.ListNodeHealth(sctx)
		if err != nil {
			return err
		}
		for _, h := range hs {
			f.Health[h.SiteID] = h
		}
	}
	if f.Lease, err = st.GetLease(sctx, cluster.SingletonLease); errors.Is(err, store.ErrNotFound) {
		f.Lease, err = nil, nil
	}
	if err != nil {
		return err
	}
	// Hosts that cannot be read are a finding of their own (a schema this
	// check does not know), not a reason to say nothing of the nodes.
	f.HostsErr = f.readHosts(sctx, st)
	return nil
}

func (f *Facts) readHosts(ctx context.Context, st store.Store) error {
	opt := store.ListOptions{Limit: store.MaxLimit}
	for {
		hs, err := st.ListHosts(ctx, opt)
		if err != nil {
			return fmt.Errorf("list hosts: %w", err)
		}
		f.Hosts = append(f.Hosts, hs...)
		if len(hs) < opt.Limit {
			return nil
		}
		opt.After = hs[len(hs)-1].ID
	}
}
