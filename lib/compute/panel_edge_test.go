package compute

import (
	"fmt"
	"math"
	"math/rand"
	"testing"
)

// TestKernelParts checks every edge-tile kernel against its kernel's full
// tile: the h x w corner it covers bit for bit (the same FMA sequence per
// lane), and at least that corner, with the rest of C untouched.
func TestKernelParts(t *testing.T) {
	rng := rand.New(rand.NewSource(9))
	for _, kern := range asmKernels {
		if kern.part == nil {
			continue
		}
		mr, nr := kern.mr, kern.nr
		for h := 1; h <= mr; h++ {
			for _, w := range []int{1, nr/2 - 1, nr / 2, nr/2 + 1, nr} {
				for _, kb := range []int{1, 3, 256} {
					name := fmt.Sprintf("%s %dx%d kb %d", kern.name, h, w, kb)
					a, b := randSlice(rng, kb*mr), randSlice(rng, kb*nr)
					ldc := nr + 5
					init := randSlice(rng, mr*ldc)
					full := append([]float32(nil), init...)
					part := append([]float32(nil), init...)
					kern.fn(kb, a, b, full, ldc)
					kern.edgeFn(h, w)(kb, a, b, part, ldc)
					for i := range part {
						r, c := i/ldc, i%ldc
						got := part[i]
						switch {
						case r < h && c < w:
							if math.Float32bits(got) != math.Float32bits(full[i]) {
								t.Fatalf("%s: c[%d][%d] = %v, want %v", name, r, c, got, full[i])
							}
						case c >= nr:
							if math.Float32bits(got) != math.Float32bits(init[i]) {
								t.Fatalf("%s: c[%d][%d] beyond the tile changed", name, r, c)
							}
						default:
							if math.Float32bits(got) != math.Float32bits(init[i]) && math.Float32bits(got) != math.Float32bits(full[i]) {
								t.Fatalf("%s: c[%d][%d] = %v, neither untouched nor the full tile's", name, r, c, got)
							}
						}
					}
				}
			}
		}
	}
}
