package storecopy

import (
	"context"
	"fmt"
	"slices"
	"sort"
)

// CompareOptions say how rows are matched.
type CompareOptions struct {
	// Identity, by table, names the columns that identify a row; its
	// primary key when not given.
	Identity map[string][]string
	// Normalize, by table, changes the identity values of each row of
	// both sides before they are matched.
	Normalize map[string]func(Row) error
}

// Missing counts, by table, the rows of a that b does not have (matched
// by their identity, see CompareOptions). Tables that are not copied are
// not compared; a table b lacks counts all of a's rows.
func Missing(ctx context.Context, a, b DB, opt CompareOptions) ([]TableRows, error) {
	lite, pg, err := pair(a, b)
	if err != nil {
		return nil, err
	}
	sch, err := readSchema(ctx, lite, pg)
	if err != nil {
		return nil, err
	}
	var out []TableRows
	for _, t := range sch.tables {
		if notCopiedTable(t.name) {
			continue
		}
		n, err := missingRows(ctx, a, b, t, opt)
		if err != nil {
			return nil, fmt.Errorf("compare %s: %w", t.name, err)
		}
		if n > 0 {
			out = append(out, TableRows{Table: t.name, Rows: n})
		}
	}
	onlyA := sch.onlySQLite
	if a.postgres() {
		onlyA = sch.onlyPG
	}
	counts, err := countRows(ctx, a.SQL, slices.DeleteFunc(slices.Clone(onlyA), notCopiedTable))
	if err != nil {
		return nil, err
	}
	out = append(out, counts...)
	sort.Slice(out, func(i, j int) bool { return out[i].Table < out[j].Table })
	return out, nil
}

func missingRows(ctx context.Context, a, b DB, t *table, opt CompareOptions) (int64, error) {
	var cols []column
	for _, name := range identity(t, opt.Identity[t.name]) {
		c, ok := t.col(name)
		if !ok {
			return 0, fmt.Errorf("identity column %s is not in both databases", name)
		}
		cols = append(cols, c)
	}
	key := func(vals []any) (string, error) {
		err := throughRow(cols, vals, opt.Normalize[t.name])
		return keyString(vals), err
	}
	have := map[string]bool{}
	err := scan(ctx, b.SQL, b.postgres(), t, cols, func(vals []any) error {
		k, err := key(vals)
		have[k] = true
		return err
	})
	if err != nil {
		return 0, err
	}
	var n int64
	err = scan(ctx, a.SQL, a.postgres(), t, cols, func(vals []any) error {
		k, err := key(vals)
		if !have[k] {
			n++
		}
		return err
	})
	return n, err
}

func identity(t *table, given []string) []string {
	if len(given) > 0 {
		return given
	}
	if len(t.key) > 0 {
		return t.key
	}
	names := make([]string, len(t.cols))
	for i, c := range t.cols {
		names[i] = c.name
	}
	return names
}
