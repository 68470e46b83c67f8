package agent

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"sync"
)

// cpuSampler turns /proc/stat's cumulative CPU times into the share of
// time the host's CPUs were busy since the previous sample.
type cpuSampler struct {
	mu                sync.Mutex
	lastBusy, lastAll uint64
}

func (c *cpuSampler) sample() float64 {
	busy, all, ok := readCPU()
	if !ok {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	prevBusy, prevAll := c.lastBusy, c.lastAll
	c.lastBusy, c.lastAll = busy, all
	if prevAll == 0 || all <= prevAll || busy < prevBusy {
		return 0
	}
	return float64(busy-prevBusy) * 100 / float64(all-prevAll)
}

// readCPU sums the first line of /proc/stat: user nice system idle iowait
// irq softirq steal (guest time is already in user).
func readCPU() (busy, all uint64, ok bool) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0, 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return 0, 0, false
	}
	fields := strings.Fields(sc.Text())
	if len(fields) < 9 || fields[0] != "cpu" {
		return 0, 0, false
	}
	for i, s := range fields[1:9] {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, 0, false
		}
		all += v
		if i != 3 && i != 4 { // idle, iowait
			busy += v
		}
	}
	return busy, all, true
}

// memory reads the host's total and used memory (total less available),
// in bytes, from /proc/meminfo.
func memory() (total, used int64) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	var avail int64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(fields[1], 10, 64)
		switch fields[0] {
		case "MemTotal:":
			total = v * 1024
		case "MemAvailable:":
			avail = v * 1024
		}
	}
	return total, total - avail
}
