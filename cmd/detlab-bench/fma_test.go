package main

import (
	"strings"
	"testing"
)

func TestMeasuredFMAPeak(t *testing.T) {
	loop, _ := fmaKernel()
	if loop == nil {
		t.Skip("no vector FMA loop for this CPU: the peak is the formula's")
	}
	m := measuredFMAPeak()
	f := peakFLOPS(0, 0, 0)
	t.Logf("FMA loop %.1f GFLOP/s, formula %.1f (%s)", m, f.gflops, f.formula)
	// Even on a machine shared with other work the loop reaches a real
	// fraction of the formula, and it cannot beat it by a factor of two
	// (that would mean a wrong flop count per iteration).
	if m < 0.05*f.gflops || m > 2*f.gflops {
		t.Errorf("measured FMA peak %.1f GFLOP/s is implausible against the formula's %.1f", m, f.gflops)
	}
	if p := withMeasuredPeak(f); p.gflops < f.gflops || !strings.Contains(p.formula, "FMA loop") {
		t.Errorf("withMeasuredPeak(%v) = %v: never below the formula, and it says what was measured", f, p)
	}
}
