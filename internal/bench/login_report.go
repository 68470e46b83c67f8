package bench

import (
	"fmt"
	"io"
	"time"
)

// LoginTargetOverFloor is the target: the storm within 10% of the floor.
const LoginTargetOverFloor = 0.10

// OverFloor is how far the storm took longer than the floor (0.25 is 25%).
func (r *LoginResult) OverFloor() float64 {
	if r.Floor <= 0 {
		return 0
	}
	return r.Total.Seconds()/r.Floor.Seconds() - 1
}

// ExpectedWait is what a FIFO hasher makes each person wait when InFlight
// people are in its queue: InFlight ÷ the parallel hashing rate.
func (r *LoginResult) ExpectedWait() time.Duration {
	if r.HashParallel <= 0 {
		return 0
	}
	return time.Duration(float64(r.Config.InFlight) / r.HashParallel * float64(time.Second))
}

// Print writes the report.
func (r *LoginResult) Print(w io.Writer) {
	c := r.Config
	fmt.Fprintf(w, "lobby bench login: start-of-day storm, POST /login then POST /connect per person\n")
	fmt.Fprintf(w, "Machine: %s\n", r.Machine)
	fmt.Fprintf(w, "Node:    in this process (server.New, memory provider, plain HTTP on 127.0.0.1), %d hash slots (FIFO queue)\n", r.HashSlots)
	fmt.Fprintf(w, "Store:   %s\n", r.StoreInfo)
	fmt.Fprintf(w, "Load:    %d people, %d at a time (client goroutines in the same process, sharing the %d cores); users made through the store\n", c.Users, c.InFlight, r.Machine.Cores)
	fmt.Fprintf(w, "         with one reused argon2id hash (%s, 32-byte key); each sign-in verifies it in full; each desktop is released after connect\n", r.Params)
	fmt.Fprintf(w, "Floor:   one verification %s on one goroutine (median of %d); %.1f/s with %d goroutines at once (%d each);\n",
		Ms(r.HashOne), c.HashRuns, r.HashParallel, r.Machine.GOMAXPROCS, c.HashRuns)
	fmt.Fprintf(w, "         floor = the hashing alone at the rate measured with every core hashing: %d ÷ %.1f/s = %.2f s\n",
		c.Users, r.HashParallel, r.Floor.Seconds())
	fmt.Fprintf(w, "         (ideal, if %d hashes at once ran as fast as one alone: %d × %s ÷ %d = %.2f s)\n",
		r.Machine.GOMAXPROCS, c.Users, Ms(r.HashOne), r.Machine.GOMAXPROCS, r.Ideal.Seconds())
	t := &table{}
	t.add("result", "value")
	t.add("total (first login sent to last release answered)", fmt.Sprintf("%.2f s", r.Total.Seconds()))
	t.add("floor", fmt.Sprintf("%.2f s", r.Floor.Seconds()))
	t.add("over the floor", fmt.Sprintf("%+.1f%%", 100*r.OverFloor()))
	t.add("over the ideal", fmt.Sprintf("%+.1f%%", 100*(r.Total.Seconds()/r.Ideal.Seconds()-1)))
	t.add("sign-ins per second", fmt.Sprintf("%.1f", float64(r.OK)/r.Total.Seconds()))
	t.add("people with a desktop / errors", fmt.Sprintf("%d / %d", r.OK, r.Errors))
	t.write(w)
	if r.FirstErr != "" {
		fmt.Fprintf(w, "  first error: %s\n", r.FirstErr)
	}
	t = &table{}
	t.add(latencyHeader...)
	t.add(latencyRow("login", r.Login)...)
	t.add(latencyRow("connect", r.Connect)...)
	t.add(latencyRow("time to desktop", r.Desktop)...)
	t.write(w)
	ratio := 0.0
	if r.Desktop.P50 > 0 {
		ratio = float64(r.Desktop.Max) / float64(r.Desktop.P50)
	}
	fmt.Fprintf(w, "Fairness: time to desktop spread %s to %s, max/p50 = %.2f; a FIFO hasher with %d in flight predicts about %s each (in flight ÷ parallel rate)\n",
		Ms(r.Desktop.Min), Ms(r.Desktop.Max), ratio, c.InFlight, Ms(r.ExpectedWait()))
	ok := r.OverFloor() <= LoginTargetOverFloor
	fmt.Fprintf(w, "Target: within %.0f%% of the floor: %s\n", 100*LoginTargetOverFloor,
		verdict(ok, fmt.Sprintf("%.1f%% over, %.2f s more than the floor", 100*r.OverFloor(), (r.Total-r.Floor).Seconds())))
	r.printSplit(w)
	if r.SlowNote != "" {
		fmt.Fprintf(w, "Slow request: %s\n", r.SlowNote)
	}
	fmt.Fprintf(w, "Memory (VmRSS of this process, node and load generator): after the storm %s, peak (VmHWM) %s\n", MiB(r.MemAfter.RSS), MiB(r.MemAfter.HWM))
	r.CPU.Write(w, 12)
	if c.CPUProfile != "" {
		fmt.Fprintf(w, "CPU profile of the storm: %s (go tool pprof -top %s)\n", c.CPUProfile, c.CPUProfile)
	}
}

// printSplit splits the storm's CPU time between hashing, the store and
// the rest, by two methods.
func (r *LoginResult) printSplit(w io.Writer) {
	if r.CPU == nil || r.CPU.CPU <= 0 {
		return
	}
	hashCPU := time.Duration(int64(r.OK) * int64(r.HashOne))
	fmt.Fprintf(w, "Time split, method 1 (known cost × count): %d verifications × %s = %.2f s of CPU for hashing, %.0f%% of the %.2f s this process used\n",
		r.OK, Ms(r.HashOne), hashCPU.Seconds(), 100*hashCPU.Seconds()/r.CPU.CPU.Seconds(), r.CPU.CPU.Seconds())
	h := r.CPU.Frac(CatHash)
	fmt.Fprintf(w, "Time split, method 2 (CPU profile of the storm, by stack): hashing %.1f%%, store %.1f%%, pool manager %.1f%%, GC %.1f%%, HTTP/API %.1f%%, load generator %.1f%%, rest %.1f%%\n",
		100*h, 100*r.CPU.Frac(CatStore), 100*r.CPU.Frac(CatManager), 100*r.CPU.Frac(CatGC), 100*r.CPU.Frac(CatHTTP), 100*r.CPU.Frac(CatClient),
		100*(1-h-r.CPU.Frac(CatStore)-r.CPU.Frac(CatManager)-r.CPU.Frac(CatGC)-r.CPU.Frac(CatHTTP)-r.CPU.Frac(CatClient)))
	if h > 0 && r.OK > 0 {
		inStorm := time.Duration(h * float64(r.CPU.CPU) / float64(r.OK))
		floor := time.Duration(h * float64(r.CPU.CPU) / float64(r.Machine.GOMAXPROCS))
		fmt.Fprintf(w, "Hashing during the storm: %s of CPU per verification (profile share × CPU ÷ count); that alone needs %.2f s on %d cores, the storm took %+.1f%% more\n",
			Ms(inStorm), floor.Seconds(), r.Machine.GOMAXPROCS, 100*(r.Total.Seconds()/floor.Seconds()-1))
	}
}
