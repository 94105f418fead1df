package main

import (
	"math"
	"math/rand"
	"strings"
	"testing"
	"time"

	"github.com/detlab/detlab/lib/nn"
)

// plain hides every optional interface of the backend it wraps.
type plain struct{ nn.Backend }

func TestCountingConv2dFused(t *testing.T) {
	geo := nn.ConvGeom{N: 2, C: 3, H: 7, W: 6, K: 5, KH: 3, KW: 3, SH: 2, SW: 1, PH: 1, PW: 1}
	geo.OH = (geo.H+2*geo.PH-geo.KH)/geo.SH + 1
	geo.OW = (geo.W+2*geo.PW-geo.KW)/geo.SW + 1
	rng := rand.New(rand.NewSource(1))
	fill := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64())
		}
		return v
	}
	x, w := fill(geo.N*geo.C*geo.H*geo.W), fill(geo.K*geo.C*geo.KH*geo.KW)
	n := geo.N * geo.K * geo.OH * geo.OW
	ep := nn.ConvEpilogue{Scale: fill(geo.K), Shift: fill(geo.K), Residual: fill(n), ReLU: true}
	want := make([]float32, n)
	nn.CPU{}.Conv2dFused(geo, x, w, ep, want, nil)
	for _, tc := range []struct {
		name string
		b    nn.Backend
	}{{"fused inner", nn.CPU{}}, {"inner without Conv2dFused", plain{nn.CPU{}}}} {
		c := &counting{Backend: tc.b}
		got := make([]float32, n)
		c.Conv2dFused(geo, x, w, ep, got, nil)
		for i := range got {
			if math.Abs(float64(got[i]-want[i])) > 1e-4*(1+math.Abs(float64(want[i]))) {
				t.Fatalf("%s: y[%d] = %v, want %v", tc.name, i, got[i], want[i])
			}
		}
		if f := c.flops.Load(); f != convFlops(geo) {
			t.Errorf("%s: counted %d flops, want %d", tc.name, f, convFlops(geo))
		}
	}
}

// TestLayerTimes checks -layers' table: one row per geometry in the order
// first called, calls and milliseconds per run, and the total's share of
// the median run.
func TestLayerTimes(t *testing.T) {
	a := nn.ConvGeom{N: 1, C: 64, H: 56, W: 56, K: 64, KH: 3, KW: 3, SH: 1, OH: 56, OW: 56}
	b := nn.ConvGeom{N: 1, C: 3, H: 224, W: 224, K: 64, KH: 7, KW: 7, SH: 2, OH: 112, OW: 112}
	var l layerTimes
	l.add(a, time.Hour) // the warm-up, forgotten by reset
	l.reset()
	for range 2 { // two runs: a twice, b once per run
		l.add(b, 3*time.Millisecond)
		l.add(a, time.Millisecond)
		l.add(a, time.Millisecond)
	}
	var out strings.Builder
	l.write(&out, 2, 10)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("got %d lines, want a header, 2 rows and a total:\n%s", len(lines), out.String())
	}
	for i, want := range [][]string{
		{"1x3x224x224", "->", "64,", "7x7/2", "1", "3.000"},
		{"1x64x56x56", "->", "64,", "3x3/1", "2", "2.000"},
		{"all", "convolutions", "5.000", "(50%"},
	} {
		if got := strings.Fields(lines[i+1]); len(got) < len(want) || strings.Join(got[:len(want)], " ") != strings.Join(want, " ") {
			t.Errorf("line %d = %q, want it to start with the fields %q", i+1, lines[i+1], want)
		}
	}
}
