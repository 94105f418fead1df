package main

import (
	"fmt"
	"runtime"
	"sync"
	"time"
)

// measuredFMAPeak times independent vector FMAs on every core at once (best
// of three 100 ms windows), the fp32 rate the cores really reach at the
// clock they run now (turbo included), in GFLOP/s; 0 where there is no
// vector FMA loop for this CPU.
func measuredFMAPeak() float64 { return measuredLoopPeak(fmaKernel()) }

// measuredBF16Peak is measuredFMAPeak for VDPBF16PS (bf16 pairs, float32
// accumulation), 0 without AVX512_BF16: the rate bf16 autocast's kernel
// could reach, to set our bf16 times against.
func measuredBF16Peak() float64 { return measuredLoopPeak(bf16Kernel()) }

// measuredLoopPeak runs loop (per flops an iteration) on every core at
// once and returns the best rate of three 100 ms windows in GFLOP/s, 0
// for a nil loop.
func measuredLoopPeak(loop func(n int), per int) float64 {
	if loop == nil {
		return 0
	}
	const iters = 1 << 16
	workers := runtime.GOMAXPROCS(0)
	best := 0.0
	for range 3 {
		var wg sync.WaitGroup
		counts := make([]int, workers)
		start := time.Now()
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				for time.Since(start) < 100*time.Millisecond {
					loop(iters)
					counts[w]++
				}
			}()
		}
		wg.Wait()
		total := 0
		for _, c := range counts {
			total += c
		}
		best = max(best, float64(total)*iters*float64(per)/time.Since(start).Seconds()/1e9)
	}
	return best
}

// withMeasuredPeak raises the formula's peak to the measured FMA rate when
// the cores run faster than /proc/cpuinfo's clock says (turbo), so the %pk
// columns never overstate; a busy machine measuring lower keeps the formula.
func withMeasuredPeak(pk peak) peak {
	m := measuredFMAPeak()
	if m <= 0 {
		pk.formula += " (no FMA loop for this CPU)"
		return pk
	}
	if m > 0.95*pk.gflops && m < 1.05*pk.gflops {
		pk.formula += fmt.Sprintf(" (FMA loop on all cores measured %.1f: agrees)", m)
		return pk
	}
	if m > pk.gflops {
		return peak{m, fmt.Sprintf("FMA loop measured on all cores (formula: %s = %.1f, clock understated)", pk.formula, pk.gflops)}
	}
	pk.formula += fmt.Sprintf(" (FMA loop measured %.1f: the machine is busy or the clock overstated)", m)
	return pk
}
