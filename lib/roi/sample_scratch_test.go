package roi

import (
	"math"
	"math/rand"
	"slices"
	"testing"

	"github.com/detlab/detlab/lib/box"
)

// scratchBoxes returns n boxes on a grid of a 320x320 image.
func scratchBoxes(rng *rand.Rand, n int) []box.Box {
	out := make([]box.Box, n)
	for i := range out {
		x, y := float32(rng.Intn(40)*8), float32(rng.Intn(40)*8)
		out[i] = box.Box{X1: x, Y1: y, X2: x + float32(8+rng.Intn(8)*16), Y2: y + float32(8+rng.Intn(8)*16)}
	}
	return out
}

// TestSelectTrainingSamplesWith runs SelectTrainingSamplesWith with one
// scratch over images of several sizes (with and without GT, more and
// fewer candidates than the batch) and checks every result equals
// SelectTrainingSamples' from an identically seeded generator.
func TestSelectTrainingSamplesWith(t *testing.T) {
	c := Defaults()
	data := rand.New(rand.NewSource(5))
	r1, r2 := rand.New(rand.NewSource(11)), rand.New(rand.NewSource(11))
	var s TrainingScratch
	same := func(a, b []float32) bool {
		return slices.EqualFunc(a, b, func(x, y float32) bool { return x == y || (math.IsNaN(float64(x)) && math.IsNaN(float64(y))) })
	}
	for i, sz := range [][2]int{{2000, 3}, {300, 1}, {2000, 0}, {50, 5}, {1200, 8}} {
		props, gt := scratchBoxes(data, sz[0]), scratchBoxes(data, sz[1])
		labels := make([]int, sz[1])
		for j := range labels {
			labels[j] = 1 + data.Intn(4)
		}
		want, err := SelectTrainingSamples(props, gt, labels, c, r1)
		if err != nil {
			t.Fatal(err)
		}
		got, err := SelectTrainingSamplesWith(&s, props, gt, labels, c, r2)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got.Proposals, want.Proposals) || !slices.Equal(got.MatchedIdxs, want.MatchedIdxs) ||
			!slices.Equal(got.Labels, want.Labels) || !same(got.RegressionTargets, want.RegressionTargets) {
			t.Errorf("image %d (%d proposals, %d GT): SelectTrainingSamplesWith differs", i, sz[0], sz[1])
		}
	}
	if r1.Int63() != r2.Int63() {
		t.Error("the generators' states differ afterwards")
	}
	props, gt := scratchBoxes(data, 2000), scratchBoxes(data, 3)
	labels := []int{1, 2, 3}
	run := func() { _, _ = SelectTrainingSamplesWith(&s, props, gt, labels, c, r2) }
	run()
	if n := testing.AllocsPerRun(10, run); n > 1 {
		t.Errorf("steady-state sampling: %v allocations per image, want 1 (the regression targets)", n)
	}
	if _, err := SelectTrainingSamplesWith(&s, props, gt, []int{1}, c, r2); err == nil {
		t.Error("3 GT boxes with 1 label accepted")
	}
}
