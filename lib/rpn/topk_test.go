package rpn

import (
	"math"
	"math/rand"
	"slices"
	"testing"

	"github.com/detlab/detlab/lib/tensor"
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

// TestFlattenPredictionsFollowsFlatIndex checks the direct loops against
// the FlatIndex permutation on two levels of odd sizes.
func TestFlattenPredictionsFollowsFlatIndex(t *testing.T) {
	rng := rand.New(rand.NewSource(4))
	shapes := [][3]int{{3, 2, 5}, {2, 4, 3}} // (A, H, W) per level
	const n = 2
	var objs, dels []*tensor.Tensor
	for _, s := range shapes {
		o, d := tensor.New(n, s[0], s[1], s[2]), tensor.New(n, 4*s[0], s[1], s[2])
		for i := range o.Data() {
			o.Data()[i] = rng.Float32()
		}
		for i := range d.Data() {
			d.Data()[i] = rng.Float32()
		}
		objs, dels = append(objs, o), append(dels, d)
	}
	obj, del, err := FlattenPredictions(objs, dels)
	if err != nil {
		t.Fatal(err)
	}
	total := obj.Shape()[1]
	start := 0
	for l, s := range shapes {
		size := s[0] * s[1] * s[2]
		oi, di := FlatIndex(1, s[0], s[1], s[2]), FlatIndex(4, s[0], s[1], s[2])
		for img := range n {
			for i, j := range oi {
				if got, want := obj.Data()[img*total+start+i], objs[l].Data()[img*size+j]; got != want {
					t.Fatalf("level %d image %d objectness %d = %v, want %v", l, img, i, got, want)
				}
			}
			for i, j := range di {
				if got, want := del.Data()[4*(img*total+start)+i], dels[l].Data()[img*4*size+j]; got != want {
					t.Fatalf("level %d image %d delta %d = %v, want %v", l, img, i, got, want)
				}
			}
		}
		start += size
	}
}
