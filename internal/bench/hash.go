package bench

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"time"

	"lobby/internal/auth"
)

// HashConfig configures RunHash.
type HashConfig struct {
	Sets []auth.Params // default auth.OWASPParams
	Runs int           // verifications timed per goroutine and set; default 32
	// Rounds repeats the whole comparison, the sets interleaved, so that
	// a moment of other load on the machine hits every set alike.
	Rounds int // default 3
	Log    io.Writer
}

// HashSet is one argon2id setting's figures.
type HashSet struct {
	Params   auth.Params
	One      []time.Duration // per round: median verification on one goroutine
	Parallel []float64       // per round: verifications/s with one goroutine per core
	AllocMiB float64         // bytes allocated per verification
}

// Efficiency is how much of the cores' ideal rate (cores ÷ one
// verification) the parallel rate reaches, in the round with the best rate.
func (s *HashSet) Efficiency(cores int) float64 {
	best, one := 0.0, time.Duration(0)
	for i, r := range s.Parallel {
		if r > best {
			best, one = r, s.One[i]
		}
	}
	if one <= 0 {
		return 0
	}
	return best / (float64(cores) / one.Seconds())
}

// HashResult is the comparison.
type HashResult struct {
	Machine Machine
	Config  HashConfig
	Sets    []*HashSet
}

// RunHash compares argon2id settings on this machine: the time of one
// verification alone, and the rate with every core verifying at once
// (the sign-in storm's ceiling, which shared caches and memory bandwidth
// can hold below cores × the single rate).
func RunHash(ctx context.Context, cfg HashConfig) (*HashResult, error) {
	if len(cfg.Sets) == 0 {
		cfg.Sets = auth.OWASPParams
	}
	setDefault(&cfg.Runs, 32)
	setDefault(&cfg.Rounds, 3)
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	res := &HashResult{Machine: ReadMachine(), Config: cfg}
	for _, p := range cfg.Sets {
		res.Sets = append(res.Sets, &HashSet{Params: p})
	}
	const pw = "hash benchmark password"
	for round := range cfg.Rounds {
		for _, s := range res.Sets {
			fmt.Fprintf(cfg.Log, "hash: round %d/%d, %s\n", round+1, cfg.Rounds, s.Params)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			one, rate, err := timeHashes(ctx, s.Params, pw, cfg.Runs, res.Machine.GOMAXPROCS)
			if err != nil {
				return nil, err
			}
			runtime.ReadMemStats(&after)
			// timeHashes hashes once, then verifies Runs times alone and
			// Runs times on each core.
			n := 1 + cfg.Runs*(1+res.Machine.GOMAXPROCS)
			s.AllocMiB = float64(after.TotalAlloc-before.TotalAlloc) / float64(n) / (1 << 20)
			s.One, s.Parallel = append(s.One, one), append(s.Parallel, rate)
		}
	}
	return res, ctx.Err()
}

// Print writes the report.
func (r *HashResult) Print(w io.Writer) {
	cores := r.Machine.GOMAXPROCS
	fmt.Fprintf(w, "lobby bench hash: argon2id settings compared (golang.org/x/crypto/argon2, 32-byte key)\n")
	fmt.Fprintf(w, "Machine: %s\n", r.Machine)
	fmt.Fprintf(w, "Method:  per set and round, %d verifications on one goroutine (median), then %d on each of %d goroutines at once (rate); %d rounds, sets interleaved\n",
		r.Config.Runs, r.Config.Runs, cores, r.Config.Rounds)
	t := &table{}
	t.add("setting", "one verification (each round)", fmt.Sprintf("rate, %d at once (each round)", cores), "of the ideal", "storm floor, 10,000", "allocated per hash")
	for _, s := range r.Sets {
		ones, rates := "", ""
		best := 0.0
		for i := range s.One {
			if i > 0 {
				ones, rates = ones+", ", rates+", "
			}
			ones += Ms(s.One[i])
			rates += fmt.Sprintf("%.1f/s", s.Parallel[i])
			best = max(best, s.Parallel[i])
		}
		floor := ""
		if best > 0 {
			floor = fmt.Sprintf("%.1f s", 10000/best)
		}
		t.add(s.Params.String(), ones, rates, fmt.Sprintf("%.0f%%", 100*s.Efficiency(cores)), floor, fmt.Sprintf("%.1f MiB", s.AllocMiB))
	}
	t.write(w)
	fmt.Fprintf(w, "OWASP gives these settings as an equal defense. \"of the ideal\" is the best round's rate against %d ÷ that round's single time;\n", cores)
	fmt.Fprintf(w, "\"storm floor\" is 10,000 verifications at the best rate with every core hashing.\n")
}
