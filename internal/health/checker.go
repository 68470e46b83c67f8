package health

import (
	"context"
	"encoding/json"
	"net/http"
)

// Checker runs the whole check: Gather from Source, Evaluate with Options.
type Checker struct {
	Source  Source
	Options Options
}

// Run gathers the facts and evaluates them.
func (c *Checker) Run(ctx context.Context) *Report {
	return Evaluate(Gather(ctx, c.Source), c.Options)
}

// PingHandler answers PingPath with what ping says of this node.
func PingHandler(ping func() Ping) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(ping())
	})
}
