package main

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/detlab/detlab/lib/nn"
)

// layerTimes accumulates the wall time of a workload's forward
// convolutions by geometry, for -layers: where a forward's time goes,
// layer by layer, without a profiler's attribution to shared kernels.
type layerTimes struct {
	mu    sync.Mutex
	order []string
	stats map[string]*layerStat
}

type layerStat struct {
	calls int
	total time.Duration
	flops int64
}

// add records one call of the convolution geo that took d.
func (l *layerTimes) add(geo nn.ConvGeom, d time.Duration) {
	key := fmt.Sprintf("%dx%dx%dx%d -> %d, %dx%d/%d", geo.N, geo.C, geo.H, geo.W, geo.K, geo.KH, geo.KW, geo.SH)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stats == nil {
		l.stats = map[string]*layerStat{}
	}
	s := l.stats[key]
	if s == nil {
		s = &layerStat{}
		l.stats[key] = s
		l.order = append(l.order, key)
	}
	s.calls++
	s.total += d
	s.flops += convFlops(geo)
}

// reset forgets the warm-up's calls.
func (l *layerTimes) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.order, l.stats = nil, nil
}

// write prints the table for runs timed runs: per geometry, in the order
// first called, the calls per run, milliseconds per run and GFLOP/s, then
// the total and its share of the median run time.
func (l *layerTimes) write(w io.Writer, runs int, medianMS float64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(w, "%-42s %6s %9s %9s\n", "convolution (NxCxHxW -> K, kernel/stride)", "calls", "ms/run", "GFLOP/s")
	var sum time.Duration
	keys := l.order
	for _, k := range keys {
		s := l.stats[k]
		sum += s.total
		ms := s.total.Seconds() * 1e3 / float64(runs)
		fmt.Fprintf(w, "%-42s %6d %9.3f %9.1f\n", k, s.calls/runs, ms, float64(s.flops)/s.total.Seconds()/1e9)
	}
	total := sum.Seconds() * 1e3 / float64(runs)
	fmt.Fprintf(w, "%-42s %6s %9.3f   (%.0f%% of the median run, %.2f ms)\n", "all convolutions", "", total, 100*total/medianMS, medianMS)
}
