package compute

import (
	"math"
	"math/rand"
	"reflect"
	"testing"
)

// TestKernelHalf checks every kernel's half-width form against its full
// form: the first nr/2 columns bit for bit (same FMA sequence per lane),
// the other columns and the rest of C untouched.
func TestKernelHalf(t *testing.T) {
	rng := rand.New(rand.NewSource(9))
	for _, kern := range asmKernels {
		if kern.fnHalf == nil {
			continue
		}
		mr, nr := kern.mr, kern.nr
		for _, kb := range []int{1, 2, 7, 256} {
			a, b := randSlice(rng, kb*mr), randSlice(rng, kb*nr)
			ldc := nr + 5
			init := randSlice(rng, mr*ldc)
			full := append([]float32(nil), init...)
			half := append([]float32(nil), init...)
			kern.fn(kb, a, b, full, ldc)
			kern.fnHalf(kb, a, b, half, ldc)
			for i := range half {
				want := full[i]
				if i%ldc >= nr/2 {
					want = init[i]
				}
				if math.Float32bits(half[i]) != math.Float32bits(want) {
					t.Fatalf("%s kb %d: c[%d] = %v, want %v", kern.name, kb, i, half[i], want)
				}
			}
		}
	}
}

// TestEdgeFn checks which function computes an edge tile.
func TestEdgeFn(t *testing.T) {
	for _, kern := range asmKernels {
		if kern.fnHalf == nil {
			continue
		}
		for _, tc := range []struct {
			w    int
			half bool
		}{{1, true}, {kern.nr / 2, true}, {kern.nr/2 + 1, false}, {kern.nr, false}} {
			got := kern.edgeFn(tc.w)
			isHalf := funcPtr(got) == funcPtr(kern.fnHalf)
			if isHalf != tc.half {
				t.Errorf("%s: edgeFn(%d) half = %v, want %v", kern.name, tc.w, isHalf, tc.half)
			}
		}
	}
}

func funcPtr(f func(kb int, a, b, c []float32, ldc int)) uintptr {
	return reflect.ValueOf(f).Pointer()
}
