package health

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Status is a check's outcome.
type Status string

// Outcomes, from best to worst.
const (
	OK   Status = "ok"
	Warn Status = "warn"
	Fail Status = "fail"
)

func (s Status) rank() int {
	switch s {
	case Fail:
		return 2
	case Warn:
		return 1
	}
	return 0
}

// Check is one finding. A warning or failure says its likely cause and
// the fix.
type Check struct {
	ID      string `json:"id"`      // unique in the report: "clock/2", "reach/1-2"
	Name    string `json:"check"`   // what was checked: "clock", "reach"
	Subject string `json:"subject"` // what it is about: "node 2 (node-b)"
	Status  Status `json:"status"`
	Detail  string `json:"detail"`
	Cause   string `json:"cause,omitempty"`
	Fix     string `json:"fix,omitempty"`
}

// Summary counts the checks by outcome.
type Summary struct {
	OK   int `json:"ok"`
	Warn int `json:"warn"`
	Fail int `json:"fail"`
}

// NodeRow is one node as the report lists it.
type NodeRow struct {
	SiteID        int        `json:"site_id"`
	Name          string     `json:"name"`
	Address       string     `json:"address"`
	Version       string     `json:"version"`
	SchemaVersion int64      `json:"schema_version"`
	Mode          string     `json:"mode"`
	Alive         bool       `json:"alive"`
	Leader        bool       `json:"leader"`
	Ready         bool       `json:"ready"`
	NotReady      string     `json:"not_ready,omitempty"`
	HeartbeatAge  float64    `json:"heartbeat_age_s"`
	ClockSkewMS   *float64   `json:"clock_skew_ms,omitempty"` // nil when the node records no health
	StoreRTTMS    *float64   `json:"store_rtt_ms,omitempty"`
	CertExpires   *time.Time `json:"link_cert_expires,omitempty"`
	Agents        int        `json:"agents"`
}

// Skew is the node's clock skew for people ("" when unknown).
func (r NodeRow) Skew() string { return msText(r.ClockSkewMS) }

// StoreRoundTrip is the node's store round trip for people ("" when
// unknown).
func (r NodeRow) StoreRoundTrip() string { return msText(r.StoreRTTMS) }

// ReachRow is one probe of a node's address: by another node (FromSite),
// or by the checker itself (FromSite 0).
type ReachRow struct {
	FromSite int     `json:"from_site"`
	From     string  `json:"from"`
	ToSite   int     `json:"to_site"`
	To       string  `json:"to"`
	Address  string  `json:"address"`
	RTTMS    float64 `json:"rtt_ms"`
	Error    string  `json:"error,omitempty"`
}

// AgentRow is one host's agent: the node it is linked to and the round
// trip of that link.
type AgentRow struct {
	Host     string    `json:"host"`
	HostID   string    `json:"host_id"`
	State    string    `json:"state"`
	SiteID   int       `json:"site_id"`
	Node     string    `json:"node"`
	RTTMS    *float64  `json:"rtt_ms,omitempty"`
	LastSeen time.Time `json:"last_seen"`
}

// RoundTrip is the link's round trip for people ("" when unknown).
func (r AgentRow) RoundTrip() string { return msText(r.RTTMS) }

func msText(v *float64) string {
	if v == nil {
		return ""
	}
	return fmt.Sprintf("%.1f ms", *v)
}

// Report is the outcome of a health check.
type Report struct {
	Generated    time.Time  `json:"generated"` // by the database's clock
	From         string     `json:"from"`
	Database     string     `json:"database"`
	Status       Status     `json:"status"` // the worst check's
	Summary      Summary    `json:"summary"`
	MaxClockSkew string     `json:"max_clock_skew"`
	Nodes        []NodeRow  `json:"nodes"`
	Reach        []ReachRow `json:"reach"`
	Agents       []AgentRow `json:"agents"`
	Checks       []Check    `json:"checks"`
}

// Failed reports whether any check failed (`lobby health` exits 1).
func (r *Report) Failed() bool { return r.Summary.Fail > 0 }

// add appends a check and counts it.
func (r *Report) add(c Check) {
	r.Checks = append(r.Checks, c)
	switch c.Status {
	case OK:
		r.Summary.OK++
	case Warn:
		r.Summary.Warn++
	case Fail:
		r.Summary.Fail++
	}
	if c.Status.rank() > r.Status.rank() {
		r.Status = c.Status
	}
}

// Check returns the check of an ID, if the report has it.
func (r *Report) Check(id string) (Check, bool) {
	for _, c := range r.Checks {
		if c.ID == id {
			return c, true
		}
	}
	return Check{}, false
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes the report as a table, each warning and failure
// followed by its cause and fix.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Cluster health: %s (%d ok, %d warnings, %d failed)\n", strings.ToUpper(string(r.Status)), r.Summary.OK, r.Summary.Warn, r.Summary.Fail)
	fmt.Fprintf(&b, "Database %s, checked by %s at %s; clock skew limit %s.\n\n", r.Database, r.From, r.Generated.UTC().Format(time.RFC3339), r.MaxClockSkew)
	tw := tabwriter.NewWriter(&b, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "STATUS\tCHECK\tSUBJECT\tDETAIL")
	for _, c := range r.Checks {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", label(c.Status), c.Name, c.Subject, c.Detail)
		if c.Cause != "" {
			fmt.Fprintf(tw, "\t\t\t  cause: %s\n", c.Cause)
		}
		if c.Fix != "" {
			fmt.Fprintf(tw, "\t\t\t  fix:   %s\n", c.Fix)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func label(s Status) string {
	switch s {
	case Fail:
		return "FAIL"
	case Warn:
		return "WARN"
	}
	return "ok"
}

// ms converts a duration to milliseconds for the report.
func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func msPtr(d time.Duration) *float64 { v := ms(d); return &v }

// fmtDur writes a duration for people: 0.8 ms, 12 ms, 1.5s, 5m0s.
func fmtDur(d time.Duration) string {
	if d < 0 {
		d = -d
	}
	switch {
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.1f ms", ms(d))
	case d < time.Second:
		return fmt.Sprintf("%.0f ms", ms(d))
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}
