package bench

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Summary describes a set of latencies.
type Summary struct {
	N                  int
	Min, P50, P99, Max time.Duration
	P90, P999          time.Duration
	Mean               time.Duration
	Total              time.Duration // the sum of all
}

// Summarize sorts ds in place and summarizes it.
func Summarize(ds []time.Duration) Summary {
	if len(ds) == 0 {
		return Summary{}
	}
	slices.Sort(ds)
	var total time.Duration
	for _, d := range ds {
		total += d
	}
	return Summary{
		N: len(ds), Min: ds[0], Max: ds[len(ds)-1], Total: total,
		P50: quantile(ds, 0.50), P90: quantile(ds, 0.90), P99: quantile(ds, 0.99), P999: quantile(ds, 0.999),
		Mean: total / time.Duration(len(ds)),
	}
}

// quantile of sorted ds by the nearest-rank method.
func quantile(ds []time.Duration, q float64) time.Duration {
	i := int(q*float64(len(ds))+0.999999) - 1
	return ds[max(0, min(i, len(ds)-1))]
}

// Ms formats a duration in milliseconds with two decimals.
func Ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

// Us formats a duration in microseconds.
func Us(d time.Duration) string { return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond)) }

// table writes aligned rows; the first row is the header.
type table struct {
	rows [][]string
}

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

func (t *table) write(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for i, r := range t.rows {
		fmt.Fprintln(tw, "  "+strings.Join(r, "\t"))
		if i == 0 {
			dashes := make([]string, len(r))
			for j, c := range r {
				dashes[j] = strings.Repeat("-", max(3, len([]rune(c))))
			}
			fmt.Fprintln(tw, "  "+strings.Join(dashes, "\t"))
		}
	}
	tw.Flush()
}

// latencyRow is a table row for a named latency summary.
func latencyRow(name string, s Summary) []string {
	return []string{name, fmt.Sprint(s.N), Ms(s.P50), Ms(s.P90), Ms(s.P99), Ms(s.Max), Ms(s.Mean)}
}

var latencyHeader = []string{"latency", "count", "p50", "p90", "p99", "max", "mean"}

// verdict says whether a target was met, e.g. "met" or "MISSED by 38%".
func verdict(ok bool, miss string) string {
	if ok {
		return "met"
	}
	return "MISSED (" + miss + ")"
}
