// Package config fills a flag.FlagSet from three sources with one rule of
// precedence: a flag on the command line wins over the environment
// (LOBBY_<FLAG_NAME>, e.g. --site-id ⇄ LOBBY_SITE_ID), which wins over the
// YAML file given with --config (keys are the flag names).
package config

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// EnvName is the environment variable of a flag.
func EnvName(flagName string) string {
	return "LOBBY_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Load applies the environment and the config file (path, may be "") to
// the flags of fs not set on the command line. It is called after
// fs.Parse. getenv is os.Getenv in production.
func Load(fs *flag.FlagSet, path string, getenv func(string) string) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	file, err := readFile(path)
	if err != nil {
		return err
	}
	for key := range file {
		if fs.Lookup(key) == nil || key == "config" {
			return fmt.Errorf("config file %s: unknown option %q: valid options are %s", path, key, names(fs))
		}
	}
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || f.Name == "config" {
			return
		}
		if v := getenv(EnvName(f.Name)); v != "" {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("environment %s=%q: %v", EnvName(f.Name), v, err))
			}
			return
		}
		v, ok := file[f.Name]
		if !ok {
			return
		}
		vals := []any{v}
		if list, isList := v.([]any); isList {
			vals = list
		}
		for _, v := range vals {
			if err := fs.Set(f.Name, fmt.Sprint(v)); err != nil {
				errs = append(errs, fmt.Errorf("config file %s: option %s: %v", path, f.Name, err))
			}
		}
	})
	return errors.Join(errs...)
}

func readFile(path string) (map[string]any, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config file: %w", err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("config file %s is not valid YAML: %w", path, err)
	}
	return m, nil
}

func names(fs *flag.FlagSet) string {
	var ns []string
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name != "config" {
			ns = append(ns, f.Name)
		}
	})
	sort.Strings(ns)
	return strings.Join(ns, ", ")
}
