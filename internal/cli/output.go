package cli

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"text/tabwriter"
	"time"
)

// printJSON prints v as indented JSON; a nil slice prints as [].
func (r *runner) printJSON(v any) error {
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Slice && rv.IsNil() {
		v = []struct{}{}
	}
	enc := json.NewEncoder(r.env.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printTable prints rows under header, aligned.
func (r *runner) printTable(header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(r.env.Stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, row := range rows {
		for i := range row {
			row[i] = dash(oneLine(row[i]))
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	return tw.Flush()
}

// show prints one object as "field: value" lines, fields named as in the
// API's JSON, or the object itself as JSON.
func (r *runner) show(v any, asJSON bool) error {
	if asJSON {
		return r.printJSON(v)
	}
	var rows [][]string
	fields(reflect.ValueOf(v), "", &rows)
	tw := tabwriter.NewWriter(r.env.Stdout, 0, 8, 2, ' ', 0)
	for _, row := range rows {
		fmt.Fprintf(tw, "%s:\t%s\n", row[0], dash(oneLine(row[1])))
	}
	return tw.Flush()
}

var (
	timeType = reflect.TypeFor[time.Time]()
	rawType  = reflect.TypeFor[json.RawMessage]()
)

// fields flattens a struct into name/value rows, following embedded and
// nested structs ("release.on_logoff").
func fields(v reflect.Value, prefix string, rows *[][]string) {
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return
		}
		v = v.Elem()
	}
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		fv := v.Field(i)
		if f.Anonymous && name == "" {
			fields(fv, prefix, rows)
			continue
		}
		if name == "" {
			name = f.Name
		}
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct && ft != timeType {
			fields(fv, prefix+name+".", rows)
			continue
		}
		*rows = append(*rows, []string{prefix + name, format(fv)})
	}
}

// format renders one field's value for people.
func format(v reflect.Value) string {
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return "-"
		}
		v = v.Elem()
	}
	switch {
	case v.Type() == timeType:
		return when(v.Interface().(time.Time))
	case v.Type() == rawType:
		if v.Len() == 0 {
			return "-"
		}
		return string(v.Bytes())
	case v.Kind() == reflect.Slice:
		parts := make([]string, v.Len())
		for i := range parts {
			parts[i] = format(v.Index(i))
		}
		return list(parts)
	case v.Kind() == reflect.Struct:
		b, _ := json.Marshal(v.Interface())
		return string(b)
	}
	return fmt.Sprint(v.Interface())
}

// when formats a time for a table: local, to the second; "-" when unset.
func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format(time.DateTime)
}

// list joins values with commas; "-" when there are none.
func list(items []string) string {
	if len(items) == 0 {
		return "-"
	}
	return strings.Join(items, ",")
}

// dash returns s, or "-" when it is empty, so table columns stay aligned.
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// oneLine keeps a cell on one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
