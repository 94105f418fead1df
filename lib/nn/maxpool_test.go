package nn

import (
	"fmt"
	"math"
	"math/rand"
	"testing"
)

// TestMaxPool3s2FastBitIdentical checks the vector 3x3 stride-2 pool
// (maxPool3s2Job) against the scalar separable loops (maxPool3s2) bit for
// bit, on odd and even sizes, 1-wide and 1-high planes, widths around the
// 16-lane and 32-lane boundaries, and values mixing NaN, +-0 and +-Inf.
func TestMaxPool3s2FastBitIdentical(t *testing.T) {
	nan := float32(math.NaN())
	negNaN := math.Float32frombits(0xffc00001)
	inf := float32(math.Inf(1))
	negZero := float32(math.Copysign(0, -1))
	fills := []struct {
		name string
		fill func(rng *rand.Rand, x []float32)
	}{
		{"random", func(rng *rand.Rand, x []float32) {}},
		{"negative", func(rng *rand.Rand, x []float32) {
			for i := range x {
				x[i] = -1 - x[i]*x[i]
			}
		}},
		{"zeros", func(rng *rand.Rand, x []float32) { // ties of +0 and -0 in every order
			for i := range x {
				x[i] = [...]float32{0, negZero, negZero, -1}[rng.Intn(4)]
			}
		}},
		{"inf", func(rng *rand.Rand, x []float32) {
			for i := range x {
				switch rng.Intn(4) {
				case 0:
					x[i] = inf
				case 1:
					x[i] = -inf
				}
			}
		}},
		{"all-neg-inf", func(rng *rand.Rand, x []float32) {
			for i := range x {
				x[i] = -inf
			}
		}},
		{"nan", func(rng *rand.Rand, x []float32) { x[rng.Intn(len(x))] = nan }},
		{"neg-nan", func(rng *rand.Rand, x []float32) { x[len(x)-1] = negNaN }},
		{"nan-first", func(rng *rand.Rand, x []float32) { x[0] = nan }},
	}
	sizes := [][2]int{{1, 1}, {1, 2}, {2, 1}, {2, 2}, {3, 3}, {1, 33}, {33, 1}, {5, 16}, {6, 17},
		{7, 31}, {8, 32}, {9, 33}, {4, 64}, {3, 65}, {13, 47}, {112, 112}, {111, 113}}
	rng := rand.New(rand.NewSource(7))
	for _, hw := range sizes {
		for _, f := range fills {
			t.Run(fmt.Sprintf("%dx%d/%s", hw[0], hw[1], f.name), func(t *testing.T) {
				p := MaxPool2d{Kernel: 3, Stride: 2, Padding: 1}
				geo, err := p.geom([]int{1, 3, hw[0], hw[1]})
				if err != nil {
					t.Fatal(err)
				}
				x := randTensor(rng, 0, 1, 3, hw[0], hw[1]).Data()
				f.fill(rng, x)
				n := geo.Planes * geo.OH * geo.OW
				got, want := make([]float32, n), make([]float32, n)
				for i := range got {
					got[i] = 12345 // every output must be written
				}
				CPU{}.MaxPool2d(geo, x, got, nil)
				hw, ohw := geo.H*geo.W, geo.OH*geo.OW
				hm := make([]float32, geo.H*geo.OW)
				for q := 0; q < geo.Planes; q++ {
					maxPool3s2(geo, x[q*hw:(q+1)*hw], want[q*ohw:(q+1)*ohw], hm)
				}
				for i := range want {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						t.Fatalf("output %d = %v (%#x), want %v (%#x)", i, got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
					}
				}
			})
		}
	}
}

// BenchmarkMaxPool3s2 is ResNet18's stem pooling at batch 1 (64 planes of
// 112x112), inference.
func BenchmarkMaxPool3s2(b *testing.B) {
	p := MaxPool2d{Kernel: 3, Stride: 2, Padding: 1}
	geo, err := p.geom([]int{1, 64, 112, 112})
	if err != nil {
		b.Fatal(err)
	}
	x := randTensor(rand.New(rand.NewSource(1)), 0, 1, 64, 112, 112).Data()
	y := make([]float32, geo.Planes*geo.OH*geo.OW)
	b.SetBytes(int64(4 * (len(x) + len(y))))
	b.ReportAllocs()
	for b.Loop() {
		CPU{}.MaxPool2d(geo, x, y, nil)
	}
}
