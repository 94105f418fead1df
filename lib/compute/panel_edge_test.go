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

// TestStoreEdge checks every edge-tile store against its kernel's fused
// full-tile store: for each h x w corner, each choice of first/last block
// and epilogue (shift, residual, ReLU), the corner of C must hold the
// full tile's bits (NaN, -0 and +Inf in C and the residual included) and
// the rest of C must be untouched.
func TestStoreEdge(t *testing.T) {
	rng := rand.New(rand.NewSource(11))
	special := []float32{float32(math.NaN()), float32(math.Copysign(0, -1)), float32(math.Inf(1)), 0}
	for _, kern := range asmKernels {
		if kern.storeEdge == nil {
			continue
		}
		mr, nr := kern.mr, kern.nr
		const kb = 7
		for h := 1; h <= mr; h++ {
			for _, w := range []int{1, nr/2 - 1, nr / 2, nr/2 + 1, nr - 1, nr} {
				for _, st := range []struct {
					first, last, shift, res, relu bool
				}{
					{true, true, false, false, false},
					{true, true, true, true, true},
					{false, true, true, false, true},
					{false, true, false, true, false},
					{true, false, true, true, true},
					{false, false, true, true, true},
				} {
					name := fmt.Sprintf("%s %dx%d %+v", kern.name, h, w, st)
					a, b := randSlice(rng, kb*mr), randSlice(rng, kb*nr)
					const ldc, ldr = 41, 37
					init := randSlice(rng, mr*ldc)
					resid := randSlice(rng, mr*ldr)
					for i, v := range special {
						init[i*ldc+i] = v
						resid[(i+1)*ldr+i] = v
					}
					ep := &Epilogue{ReLU: st.relu}
					if st.shift {
						ep.Shift = randSlice(rng, mr)
					}
					if st.res {
						ep.Residual, ep.LdResidual = resid, ldr
					}
					var args kernEp
					full := append([]float32(nil), init...)
					setKernEp(&args, ep, 0, 0, mr, nr, st.first, st.last)
					kern.fnEp(kb, a, b, full, ldc, &args)

					tile := make([]float32, mr*nr)
					kern.edgeFn(h, w)(kb, a, b, tile, nr)
					edge := append([]float32(nil), init...)
					setKernEp(&args, ep, 0, 0, h, w, st.first, st.last)
					kern.storeEdge(h, w, tile, edge, ldc, &args)
					for i := range edge {
						r, c := i/ldc, i%ldc
						want := init[i]
						if r < h && c < w {
							want = full[i]
						}
						if math.Float32bits(edge[i]) != math.Float32bits(want) {
							t.Fatalf("%s: c[%d][%d] = %v, want %v", name, r, c, edge[i], want)
						}
					}
				}
			}
		}
	}
}
