package rpn

import (
	"math"
	"math/rand"
	"slices"
	"testing"
)

// topKReference is the stable comparison sort topKLogits replaced.
func topKReference(v []float32, k int) []int {
	idx := make([]int, len(v))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		va, vb := v[a], v[b]
		na, nb := va != va, vb != vb
		switch {
		case na && !nb:
			return 1
		case nb && !na:
			return -1
		case na && nb:
			return 0
		case va > vb:
			return -1
		case va < vb:
			return 1
		}
		return 0
	})
	return idx[:k]
}

func TestTopKLogitsMatchesStableSort(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	specials := []float32{0, float32(math.Copysign(0, -1)), float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), 1, -1}
	for trial := range 200 {
		v := make([]float32, rng.Intn(50))
		for i := range v {
			v[i] = float32(rng.Intn(7)-3) / 2 // ties
			if rng.Intn(5) == 0 {
				v[i] = specials[rng.Intn(len(specials))]
			}
		}
		k := 0
		if len(v) > 0 {
			k = rng.Intn(len(v) + 1)
		}
		if got, want := topKLogits(v, k), topKReference(v, k); !slices.Equal(got, want) {
			t.Fatalf("trial %d: topKLogits(%v, %d) = %v, want %v", trial, v, k, got, want)
		}
	}
}
