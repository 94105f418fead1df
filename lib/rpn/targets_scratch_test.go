package rpn

import (
	"math"
	"math/rand"
	"reflect"
	"slices"
	"testing"

	"github.com/detlab/detlab/lib/box"
)

// scratchBoxes returns n boxes on a grid of a 320x320 image.
func scratchBoxes(rng *rand.Rand, n int) []box.Box {
	out := make([]box.Box, n)
	for i := range out {
		x, y := float32(rng.Intn(40)*8), float32(rng.Intn(40)*8)
		out[i] = box.Box{X1: x - 16, Y1: y - 16, X2: x + float32(16+rng.Intn(8)*16), Y2: y + float32(16+rng.Intn(8)*16)}
	}
	return out
}

// equalFloats compares bit patterns' meaning: equal values, or both NaN,
// or the same infinity.
func equalFloats(a, b []float32) bool {
	return slices.EqualFunc(a, b, func(x, y float32) bool {
		return x == y || (math.IsNaN(float64(x)) && math.IsNaN(float64(y)))
	})
}

// TestTargetsWithMatchAssignTargets runs AssignTargetsWith and
// SampleAnchorsWith with one scratch over images of several sizes (with
// and without GT) and checks every result equals AssignTargets' and
// SampleAnchors' from an identically seeded generator.
func TestTargetsWithMatchAssignTargets(t *testing.T) {
	c := Defaults()
	data := rand.New(rand.NewSource(5))
	r1, r2 := rand.New(rand.NewSource(7)), rand.New(rand.NewSource(7))
	var s TargetScratch
	for i, sz := range [][2]int{{3000, 4}, {1500, 1}, {3000, 0}, {4500, 9}, {10, 2}} {
		anchors, gt := scratchBoxes(data, sz[0]), scratchBoxes(data, sz[1])
		want, err := AssignTargets(anchors, gt, c)
		if err != nil {
			t.Fatal(err)
		}
		got, err := AssignTargetsWith(&s, anchors, gt, c)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got.Labels, want.Labels) || !reflect.DeepEqual(got.MatchedGT, want.MatchedGT) || !equalFloats(got.RegressionTargets, want.RegressionTargets) {
			t.Errorf("image %d (%d anchors, %d GT): AssignTargetsWith differs from AssignTargets", i, sz[0], sz[1])
		}
		p1, n1, err1 := SampleAnchors(want.Labels, c, r1)
		p2, n2, err2 := SampleAnchorsWith(&s, got.Labels, c, r2)
		if err1 != nil || err2 != nil {
			t.Fatalf("image %d: %v / %v", i, err1, err2)
		}
		if !slices.Equal(p1, p2) || !slices.Equal(n1, n2) {
			t.Errorf("image %d: SampleAnchorsWith picked other anchors", i)
		}
	}
	if r1.Int63() != r2.Int63() {
		t.Error("the generators' states differ afterwards")
	}
	// Steady state: only the regression targets are allocated.
	anchors, gt := scratchBoxes(data, 3000), scratchBoxes(data, 3)
	run := func() {
		at, _ := AssignTargetsWith(&s, anchors, gt, c)
		_, _, _ = SampleAnchorsWith(&s, at.Labels, c, r2)
	}
	run()
	if n := testing.AllocsPerRun(10, run); n > 1 {
		t.Errorf("steady-state assignment and sampling: %v allocations per image, want 1 (the regression targets)", n)
	}
	if _, err := AssignTargetsWith(&s, anchors, []box.Box{{X1: float32(math.NaN())}}, c); err == nil {
		t.Error("a NaN GT box was accepted")
	}
}
