package main

import (
	"math"
	"math/rand"
	"testing"

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
