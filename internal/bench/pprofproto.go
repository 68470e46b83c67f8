package bench

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// rawProfile is the part of a pprof profile (profile.proto) the reports
// need: samples as stacks of function names, and their CPU nanoseconds.
type rawProfile struct {
	strs    []string
	funcs   map[uint64]int64    // function ID → name (string table index)
	locs    map[uint64][]uint64 // location ID → function IDs, innermost first
	samples []rawSample
}

type rawSample struct {
	locs  []uint64 // leaf first
	value int64    // CPU nanoseconds
}

// frames returns the function names of a stack, innermost first.
func (p *rawProfile) frames(locs []uint64) []string {
	var out []string
	for _, l := range locs {
		for _, f := range p.locs[l] {
			if i := p.funcs[f]; i >= 0 && int(i) < len(p.strs) {
				out = append(out, p.strs[i])
			}
		}
	}
	return out
}

var errProfile = errors.New("cpu profile: malformed protobuf")

// parseProfile decodes a gzipped profile written by runtime/pprof.
func parseProfile(gz []byte) (*rawProfile, error) {
	b, err := readGzip(gz)
	if err != nil {
		return nil, err
	}
	p := &rawProfile{funcs: map[uint64]int64{}, locs: map[uint64][]uint64{}}
	var sampleTypes [][]byte
	var samples [][]byte
	err = eachField(b, func(num protowire.Number, typ protowire.Type, v uint64, msg []byte) error {
		switch {
		case num == 1 && typ == protowire.BytesType: // sample_type
			sampleTypes = append(sampleTypes, msg)
		case num == 2 && typ == protowire.BytesType: // sample
			samples = append(samples, msg)
		case num == 4 && typ == protowire.BytesType: // location
			return p.location(msg)
		case num == 5 && typ == protowire.BytesType: // function
			return p.function(msg)
		case num == 6 && typ == protowire.BytesType: // string_table
			p.strs = append(p.strs, string(msg))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// The value to use is the one whose type is "cpu" (nanoseconds).
	idx := len(sampleTypes) - 1
	for i, st := range sampleTypes {
		var typ uint64
		_ = eachField(st, func(num protowire.Number, _ protowire.Type, v uint64, _ []byte) error {
			if num == 1 {
				typ = v
			}
			return nil
		})
		if int(typ) < len(p.strs) && p.strs[typ] == "cpu" {
			idx = i
		}
	}
	for _, s := range samples {
		var rs rawSample
		var values []uint64
		err := eachField(s, func(num protowire.Number, typ protowire.Type, v uint64, msg []byte) error {
			switch num {
			case 1:
				return appendUints(&rs.locs, typ, v, msg)
			case 2:
				return appendUints(&values, typ, v, msg)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		if idx >= 0 && idx < len(values) {
			rs.value = int64(values[idx])
		}
		p.samples = append(p.samples, rs)
	}
	return p, nil
}

func (p *rawProfile) location(msg []byte) error {
	var id uint64
	var fns []uint64
	err := eachField(msg, func(num protowire.Number, typ protowire.Type, v uint64, line []byte) error {
		switch {
		case num == 1:
			id = v
		case num == 4 && typ == protowire.BytesType: // line: function_id = 1
			return eachField(line, func(num protowire.Number, _ protowire.Type, v uint64, _ []byte) error {
				if num == 1 {
					fns = append(fns, v)
				}
				return nil
			})
		}
		return nil
	})
	p.locs[id] = fns
	return err
}

func (p *rawProfile) function(msg []byte) error {
	var id uint64
	name := int64(-1)
	err := eachField(msg, func(num protowire.Number, _ protowire.Type, v uint64, _ []byte) error {
		switch num {
		case 1:
			id = v
		case 2:
			name = int64(v)
		}
		return nil
	})
	p.funcs[id] = name
	return err
}

// appendUints appends a repeated integer field, packed or not.
func appendUints(dst *[]uint64, typ protowire.Type, v uint64, msg []byte) error {
	if typ != protowire.BytesType {
		*dst = append(*dst, v)
		return nil
	}
	for len(msg) > 0 {
		x, n := protowire.ConsumeVarint(msg)
		if n < 0 {
			return errProfile
		}
		*dst = append(*dst, x)
		msg = msg[n:]
	}
	return nil
}

// eachField calls fn with every field of a message: varints and fixed
// values in v, length-delimited contents in msg.
func eachField(b []byte, fn func(num protowire.Number, typ protowire.Type, v uint64, msg []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return errProfile
		}
		b = b[n:]
		var v uint64
		var msg []byte
		switch typ {
		case protowire.VarintType:
			v, n = protowire.ConsumeVarint(b)
		case protowire.Fixed64Type:
			v, n = protowire.ConsumeFixed64(b)
		case protowire.Fixed32Type:
			var v32 uint32
			v32, n = protowire.ConsumeFixed32(b)
			v = uint64(v32)
		case protowire.BytesType:
			msg, n = protowire.ConsumeBytes(b)
		default:
			return fmt.Errorf("%w: wire type %d", errProfile, typ)
		}
		if n < 0 {
			return errProfile
		}
		b = b[n:]
		if err := fn(num, typ, v, msg); err != nil {
			return err
		}
	}
	return nil
}
