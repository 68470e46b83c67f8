package cli

import (
	"flag"
	"slices"
	"strings"
)

// parseArgs parses flags wherever they appear among the positional
// arguments (`lobby pools add demo --max 5`) and returns the positional
// ones in order. "--" ends the flags; a lone "-" is positional.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			pos = append(pos, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		f := fs.Lookup(name)
		if f == nil || isBool(f) {
			continue // fs.Parse reports an unknown flag
		}
		if i+1 < len(args) {
			i++
			flags = append(flags, args[i])
		}
	}
	if err := fs.Parse(flags); err != nil {
		return nil, err
	}
	return pos, nil
}

func isBool(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// splitList splits a comma-separated flag value, dropping blanks.
func splitList(s string) []string {
	out := []string{}
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// given returns the names of the flags the command line set, so that a
// `set` command changes only those fields: `--min 0` is given, an absent
// --min is not.
func given(fs *flag.FlagSet) map[string]bool {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	return set
}

// ifGiven is v when the flag name was given, nil otherwise: the field of
// an update that a `set` command sends.
func ifGiven[T any](set map[string]bool, name string, v *T) *T {
	if set[name] {
		return v
	}
	return nil
}

// nothingToSet is the usage error of a `set` command given no field to
// change; it names every flag but except.
func nothingToSet(fs *flag.FlagSet, except ...string) error {
	var names []string
	fs.VisitAll(func(f *flag.Flag) {
		if !slices.Contains(except, f.Name) {
			names = append(names, "--"+f.Name)
		}
	})
	return usageErrorf("nothing to change: give one or more of %s", strings.Join(names, ", "))
}
