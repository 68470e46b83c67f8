package storecopy

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Values travel between the dialects in one neutral form per kind:
// string (text, JSON, JSON arrays, enums), int64 (integers, booleans as
// bool, bit strings), float64, time.Time (UTC, microseconds), []byte, or
// nil for NULL. Each side reads its columns into that form (readExpr,
// decode) and writes them from it (writeExpr, encode).

// riverTimeFormat is how River's SQLite driver writes times (UTC,
// milliseconds): other formats compare wrongly against its queries.
const riverTimeFormat = "2006-01-02 15:04:05.999"

// quote quotes an identifier for both dialects.
func quote(name string) string { return `"` + strings.ReplaceAll(name, `"`, `""`) + `"` }

// readExpr is the select-list expression that reads c on its dialect.
func readExpr(postgres bool, c column) string {
	q := quote(c.name)
	if postgres {
		switch c.kind {
		case kJSON, kEnum:
			return q + "::text"
		case kStrArray, kJSONArray:
			return "array_to_json(" + q + ")::text"
		case kBits, kInt:
			return q + "::int8"
		}
		return q
	}
	switch {
	case (c.kind == kJSON || c.kind == kStrArray || c.kind == kJSONArray) && c.sqliteJSONB():
		return "json(" + q + ")"
	case c.kind == kTime && c.sqliteText():
		return "CAST(" + q + " AS TEXT)"
	}
	return q
}

// writeExpr is the placeholder expression that writes c as parameter n
// (1-based) on its dialect.
func writeExpr(postgres bool, c column, n int) string {
	if !postgres {
		if (c.kind == kJSON || c.kind == kStrArray || c.kind == kJSONArray) && c.sqliteJSONB() {
			return "jsonb(?)"
		}
		return "?"
	}
	p := "$" + strconv.Itoa(n)
	switch c.kind {
	case kText:
		return p + "::text"
	case kInt:
		return p + "::int8"
	case kFloat:
		return p + "::float8"
	case kBool:
		return p + "::bool"
	case kTime:
		return p + "::timestamptz"
	case kBytes:
		return p + "::bytea"
	case kJSON:
		return p + "::text::jsonb"
	case kEnum:
		return p + "::text::" + c.pgType
	case kBits:
		return p + "::int8::" + c.pgType
	case kStrArray, kJSONArray:
		// NULL stays NULL; [] becomes an empty array.
		elems := "jsonb_array_elements_text"
		if c.kind == kJSONArray {
			elems = "jsonb_array_elements"
		}
		return fmt.Sprintf("CASE WHEN %[1]s::text IS NULL THEN NULL ELSE ARRAY(SELECT e FROM %[2]s(%[1]s::text::jsonb) WITH ORDINALITY AS x(e, i) ORDER BY i) END", p, elems)
	}
	panic(fmt.Sprintf("storecopy: no placeholder for kind %d", c.kind))
}

// decode turns what the driver scanned for c into the neutral form.
func decode(postgres bool, c column, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	var out any
	var ok bool
	switch c.kind {
	case kText, kJSON, kStrArray, kJSONArray, kEnum:
		out, ok = text(v)
	case kInt, kBits:
		out, ok = integer(v)
	case kFloat:
		switch x := v.(type) {
		case float64:
			out, ok = x, true
		case int64:
			out, ok = float64(x), true
		}
	case kBool:
		switch x := v.(type) {
		case bool:
			out, ok = x, true
		case int64:
			out, ok = x != 0, true
		}
	case kBytes:
		switch x := v.(type) {
		case []byte:
			out, ok = append([]byte(nil), x...), true
		case string:
			out, ok = []byte(x), true
		}
	case kTime:
		return decodeTime(postgres, c, v)
	}
	if !ok {
		return nil, fmt.Errorf("column %s: unexpected %T value", c.name, v)
	}
	return out, nil
}

func text(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case []byte:
		return string(x), true
	}
	return "", false
}

func integer(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case int32:
		return int64(x), true
	case int:
		return int64(x), true
	}
	return 0, false
}

func decodeTime(postgres bool, c column, v any) (any, error) {
	switch x := v.(type) {
	case time.Time:
		return x.UTC().Truncate(time.Microsecond), nil
	case int64:
		if !postgres && !c.sqliteText() {
			return time.UnixMicro(x).UTC(), nil
		}
	case string, []byte:
		s, _ := text(x)
		// River's own format, and what else its driver has been seen
		// writing: Go's time.String, monotonic clock reading included.
		s, _, _ = strings.Cut(s, " m=")
		for _, layout := range []string{"2006-01-02 15:04:05.999999999", "2006-01-02 15:04:05.999999999 -0700 MST", time.RFC3339Nano, "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02T15:04:05.999999999"} {
			if t, err := time.Parse(layout, s); err == nil {
				return t.UTC().Truncate(time.Microsecond), nil
			}
		}
		return nil, fmt.Errorf("column %s: %q is not a time", c.name, s)
	}
	return nil, fmt.Errorf("column %s: unexpected %T value for a time", c.name, v)
}

// encode turns a neutral value into the parameter for c on its dialect.
func encode(postgres bool, c column, v any) any {
	if v == nil || postgres {
		return v
	}
	switch c.kind {
	case kBool:
		if v.(bool) {
			return int64(1)
		}
		return int64(0)
	case kTime:
		t := v.(time.Time)
		if c.sqliteText() {
			return t.UTC().Round(time.Millisecond).Format(riverTimeFormat)
		}
		return t.UnixMicro()
	}
	return v
}

// keyString encodes neutral values as one comparable string.
func keyString(vals []any) string {
	var b strings.Builder
	for i, v := range vals {
		if i > 0 {
			b.WriteByte(0x1f)
		}
		switch x := v.(type) {
		case nil:
			b.WriteString("\x00")
		case time.Time:
			b.WriteString(strconv.FormatInt(x.UnixMicro(), 10))
		case []byte:
			b.WriteString(hex.EncodeToString(x))
		default:
			fmt.Fprint(&b, x)
		}
	}
	return b.String()
}
