package store

import "fmt"

// Schema is where a database's schema stands. Migrations are written
// expand/contract: an expand migration only adds, so the code of earlier
// releases keeps working on the result, and the floor stays; a contract
// migration removes or changes what earlier code used, and raises the
// floor to the oldest schema version whose code does not use it. A
// binary may serve a database whose Version is above its own as long as
// Floor is not: that is what lets release N keep serving while N+1
// migrates, during a rolling upgrade.
type Schema struct {
	Version int64 // the highest migration applied
	Floor   int64 // the oldest schema version whose code may run on it
}

// SchemaState is how a binary stands with a database's schema.
type SchemaState int

// Schema states, from a binary's point of view.
const (
	SchemaCurrent      SchemaState = iota // the database has the binary's version
	SchemaBehind                          // the database is older: migrate it
	SchemaAhead                           // newer, but the binary may still run on it (rolling upgrade)
	SchemaIncompatible                    // newer, and contracted beyond what the binary knows
)

// State says how a binary that knows schema version binary stands with s.
func (s Schema) State(binary int64) SchemaState {
	switch {
	case s.Floor > binary:
		return SchemaIncompatible
	case s.Version < binary:
		return SchemaBehind
	case s.Version > binary:
		return SchemaAhead
	}
	return SchemaCurrent
}

// Maintenance is why a node whose binary knows schema version binary must
// stay in maintenance mode on s, with what to do about it; "" when it may
// serve everyone.
func (s Schema) Maintenance(binary int64) string {
	switch s.State(binary) {
	case SchemaBehind:
		return fmt.Sprintf("database schema %d, this node expects %d: run `lobby admin db migrate` (or restart this node without --no-migrate)", s.Version, binary)
	case SchemaIncompatible:
		return fmt.Sprintf("database schema %d needs Lobby nodes that know schema %d or later, and this node knows %d: upgrade this node to the release the other nodes run", s.Version, s.Floor, binary)
	}
	return ""
}

// TooNew is the refusal to start a binary that knows schema version binary
// on an incompatible database; it wraps ErrSchemaTooNew.
func (s Schema) TooNew(binary int64) error {
	return fmt.Errorf("the database's schema version is %d and it needs a Lobby that knows schema %d or later; this binary knows %d: upgrade this node to the release the other nodes run (it does not start on a schema it does not know): %w",
		s.Version, s.Floor, binary, ErrSchemaTooNew)
}
