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

func TestMeasuredBF16Peak(t *testing.T) {
	loop, _ := bf16Kernel()
	if loop == nil {
		t.Skip("no AVX512_BF16 on this CPU: no bf16 peak")
	}
	b, f := measuredBF16Peak(), measuredFMAPeak()
	t.Logf("VDPBF16PS loop %.1f GFLOP/s, FMA loop %.1f (%.2fx)", b, f, b/f)
	// A VDPBF16PS does twice an FMA's multiply-adds: the loop cannot beat
	// the FMA loop by more than about 2x (4x would be a wrong flop count),
	// and even on a shared machine it does not fall to a tenth of it.
	if b < 0.1*f || b > 3*f {
		t.Errorf("bf16 peak %.1f GFLOP/s is implausible against the FMA loop's %.1f", b, f)
	}
}
