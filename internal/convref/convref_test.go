package convref

import (
	"math"
	"testing"
)

// TestDirect checks a hand-computed case: a 3x3 input of 1..9, a 2x2
// kernel of ones, stride 1, padding 1 (4x4 output), two channels out with
// scale, shift, residual and ReLU; and NaN passing through ReLU.
func TestDirect(t *testing.T) {
	x := []float32{1, 2, 3, 4, 5, 6, 7, 8, 9}
	w := []float32{1, 1, 1, 1, -1, -1, -1, -1}
	s := Shape{N: 1, C: 1, H: 3, W: 3, K: 2, KH: 2, KW: 2, SH: 1, SW: 1, PH: 1, PW: 1, OH: 4, OW: 4}
	res := make([]float32, 32)
	res[5] = 0.5
	y, mag := Direct(s, x, w, Epilogue{Scale: []float32{2, 1}, Shift: []float32{1, 100}, Residual: res, ReLU: true})
	// Output (0,1,1) sums x[0..1][0..1] = 1+2+4+5 = 12: 2*12 + 1 + 0.5.
	if y[5] != 25.5 || mag[5] != 25.5 {
		t.Errorf("y[5], mag[5] = %v, %v, want 25.5, 25.5", y[5], mag[5])
	}
	// Channel 1 at (0,0): -x[0] + 100 = 99 (corner: one tap inside).
	if y[16] != 99 || mag[16] != 101 {
		t.Errorf("y[16], mag[16] = %v, %v, want 99, 101", y[16], mag[16])
	}
	// Channel 1 at (1,1): -12 + 100 = 88; channel 0 never below zero here,
	// so check ReLU on a shift that makes it negative.
	y, _ = Direct(s, x, w, Epilogue{Shift: []float32{-1000, 0}, ReLU: true})
	if y[5] != 0 {
		t.Errorf("ReLU: y[5] = %v, want 0", y[5])
	}
	x[0] = float32(math.NaN())
	if y, _ = Direct(s, x, w, Epilogue{ReLU: true}); !math.IsNaN(y[0]) {
		t.Errorf("a NaN input gave %v through ReLU, want NaN", y[0])
	}
}

func TestWorstUnits(t *testing.T) {
	want, mag := []float64{1, 2, 3}, []float64{1, 4, 1}
	got := []float32{1, 2 + 4.0/(1<<24)*3, 3}
	if u, at := WorstUnits(got, want, mag); at != 1 || math.Abs(u-3) > 1e-6 {
		t.Errorf("WorstUnits = %v at %d, want 3 at 1", u, at)
	}
	got[2] = float32(math.NaN())
	if u, at := WorstUnits(got, want, mag); !math.IsInf(u, 1) || at != 2 {
		t.Errorf("with a NaN: %v at %d, want +Inf at 2", u, at)
	}
}
