package nn

import (
	"fmt"
	"math"
	"math/rand"
	"testing"
)

// TestMaxPool3s2MatchesWindowScan compares the separable 3x3 stride-2
// inference pooling with the general window scan (the training path, which
// also records positions) on odd and even sizes, tiny planes, NaN and
// -Inf.
func TestMaxPool3s2MatchesWindowScan(t *testing.T) {
	rng := rand.New(rand.NewSource(9))
	for _, hw := range [][2]int{{1, 1}, {1, 2}, {2, 1}, {2, 2}, {3, 3}, {4, 5}, {7, 6}, {112, 112}, {13, 17}} {
		for _, special := range []string{"", "nan", "-inf"} {
			t.Run(fmt.Sprintf("%dx%d%s", hw[0], hw[1], special), func(t *testing.T) {
				p := MaxPool2d{Kernel: 3, Stride: 2, Padding: 1}
				geo, err := p.geom([]int{2, 3, hw[0], hw[1]})
				if err != nil {
					t.Fatal(err)
				}
				x := randTensor(rng, 0, 2, 3, hw[0], hw[1]).Data()
				switch special {
				case "nan":
					x[rng.Intn(len(x))] = float32(math.NaN())
				case "-inf":
					for i := range x {
						if i%3 != 0 {
							x[i] = float32(math.Inf(-1))
						}
					}
				}
				n := geo.Planes * geo.OH * geo.OW
				fast, want := make([]float32, n), make([]float32, n)
				CPU{}.MaxPool2d(geo, x, fast, nil)
				CPU{}.MaxPool2d(geo, x, want, make([]int32, n))
				for i := range want {
					if math.Float32bits(fast[i]) != math.Float32bits(want[i]) && !(fast[i] != fast[i] && want[i] != want[i]) {
						t.Fatalf("output %d = %v, want %v", i, fast[i], want[i])
					}
				}
			})
		}
	}
}
