package box

import (
	"errors"
	"math"
	"math/rand"
	"slices"
	"testing"
)

// TestPermIntoMatchesRandPerm checks that permInto draws math/rand's Perm
// exactly: same permutation and same generator state afterwards (the
// samplers' seeds must give the draws they always gave).
func TestPermIntoMatchesRandPerm(t *testing.T) {
	for _, n := range []int{0, 1, 2, 5, 100, 4097} {
		for seed := int64(0); seed < 3; seed++ {
			r1, r2 := rand.New(rand.NewSource(seed)), rand.New(rand.NewSource(seed))
			want := r1.Perm(n)
			got := permInto(make([]int, n), r2)
			if !slices.Equal(got, want) {
				t.Fatalf("n %d seed %d: permInto differs from rand.Perm", n, seed)
			}
			if a, b := r1.Int63(), r2.Int63(); a != b {
				t.Fatalf("n %d seed %d: generator states differ afterwards", n, seed)
			}
		}
	}
}

// randomLabels returns n labels in {-1, 0, 1, 2} with the given share of
// positives.
func randomLabels(rng *rand.Rand, n int, posShare float64) []int {
	l := make([]int, n)
	for i := range l {
		switch u := rng.Float64(); {
		case u < posShare:
			l[i] = 1 + rng.Intn(2)
		case u < posShare+0.1:
			l[i] = -1
		}
	}
	return l
}

// TestSampleWithMatchesSample runs Sample and SampleWith (one scratch
// reused across every case, sizes up and down) from identically seeded
// generators and checks the same indices come out and the same draws are
// consumed.
func TestSampleWithMatchesSample(t *testing.T) {
	cases := []struct {
		n        int
		posShare float64
		s        Sampler
	}{
		{3000, 0.01, Sampler{256, 0.5}},
		{3000, 0.4, Sampler{256, 0.5}},
		{10, 0.5, Sampler{256, 0.5}}, // everything fits: no draw
		{700, 0.3, Sampler{512, 0.25}},
		{0, 0, Sampler{256, 0.5}},
		{5000, 0.2, Sampler{0, 0.5}},
		{2000, 0.6, Sampler{128, 1}},
	}
	var sc SampleScratch
	data := rand.New(rand.NewSource(9))
	for i, c := range cases {
		labels := randomLabels(data, c.n, c.posShare)
		r1, r2 := rand.New(rand.NewSource(int64(i))), rand.New(rand.NewSource(int64(i)))
		p1, n1, err1 := c.s.Sample(labels, r1)
		p2, n2, err2 := c.s.SampleWith(&sc, labels, r2)
		if err1 != nil || err2 != nil {
			t.Fatalf("case %d: errors %v / %v", i, err1, err2)
		}
		if !slices.Equal(p1, p2) || !slices.Equal(n1, n2) {
			t.Errorf("case %d: SampleWith picked %d+%d, Sample %d+%d, or other indices", i, len(p2), len(n2), len(p1), len(n1))
		}
		if r1.Int63() != r2.Int63() {
			t.Errorf("case %d: the generators' states differ afterwards", i)
		}
	}
}

// TestSampleWithAllocatesNothing checks the steady state of a training
// loop: same sizes every call, one scratch, no allocation.
func TestSampleWithAllocatesNothing(t *testing.T) {
	labels := randomLabels(rand.New(rand.NewSource(1)), 4000, 0.05)
	rng := rand.New(rand.NewSource(2))
	var sc SampleScratch
	s := Sampler{256, 0.5}
	if _, _, err := s.SampleWith(&sc, labels, rng); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(20, func() { _, _, _ = s.SampleWith(&sc, labels, rng) }); n != 0 {
		t.Errorf("SampleWith: %v allocations per call, want 0", n)
	}
	var u []int // grown by AllocsPerRun's warm-up call
	if n := testing.AllocsPerRun(20, func() { u = SortedUnionInto(u, sc.pos, sc.neg) }); n != 0 {
		t.Errorf("SortedUnionInto into a large enough slice: %v allocations per call", n)
	}
}

// TestSampleWithErrors checks SampleWith rejects what Sample rejects.
func TestSampleWithErrors(t *testing.T) {
	var sc SampleScratch
	labels := []int{1, 1, 1, 0, 0, 0}
	tests := []struct {
		name string
		s    Sampler
		rng  *rand.Rand
	}{
		{"negative batch", Sampler{-1, 0.5}, nil},
		{"fraction above 1", Sampler{4, 1.5}, nil},
		{"no rng but a draw needed", Sampler{2, 0.5}, nil},
	}
	for _, tc := range tests {
		if _, _, err := tc.s.SampleWith(&sc, labels, tc.rng); !errors.Is(err, ErrInput) {
			t.Errorf("%s: err = %v, want ErrInput", tc.name, err)
		}
	}
}

// TestSortedUnionInto checks it equals SortedUnion and reuses dst.
func TestSortedUnionInto(t *testing.T) {
	a, b := []int{1, 4, 9}, []int{0, 2, 4, 10}
	dst := make([]int, 0, 16)
	got := SortedUnionInto(dst, a, b)
	if want := SortedUnion(a, b); !slices.Equal(got, want) {
		t.Errorf("SortedUnionInto = %v, want %v", got, want)
	}
	if &got[0] != &dst[:1][0] {
		t.Error("SortedUnionInto did not reuse dst")
	}
}

// gridBoxes returns n boxes on a coarse grid (so that exact IoU ties
// occur), a few of them empty or NaN.
func gridBoxes(rng *rand.Rand, n int) []Box {
	out := make([]Box, n)
	for i := range out {
		x, y := float32(rng.Intn(20)*8), float32(rng.Intn(20)*8)
		w, h := float32(8+rng.Intn(6)*8), float32(8+rng.Intn(6)*8)
		out[i] = Box{x, y, x + w, y + h}
		switch rng.Intn(40) {
		case 0:
			out[i].X2 = out[i].X1 // empty
		case 1:
			out[i].Y1 = float32(math.NaN())
		}
	}
	return out
}

// TestMatchBoxesMatchesMatch checks MatchBoxes and MatchWith against
// Match on IoU(gt, preds), with and without low-quality matches, one
// scratch reused across sizes.
func TestMatchBoxesMatchesMatch(t *testing.T) {
	rng := rand.New(rand.NewSource(4))
	var sc MatchScratch
	for i, sz := range [][2]int{{3, 500}, {1, 7}, {12, 2000}, {5, 0}, {2, 40}} {
		gt, preds := gridBoxes(rng, sz[0]), gridBoxes(rng, sz[1])
		for _, m := range []Matcher{{0.7, 0.3, true}, {0.5, 0.5, false}, {0.5, 0.1, false}} {
			want, err := m.Match(IoU(gt, preds))
			if err != nil {
				t.Fatal(err)
			}
			got, err := m.MatchBoxes(&sc, gt, preds)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, want) {
				t.Errorf("case %d %+v: MatchBoxes differs from Match(IoU)", i, m)
			}
			got, err = m.MatchWith(&sc, IoU(gt, preds))
			if err != nil || !slices.Equal(got, want) {
				t.Errorf("case %d %+v: MatchWith differs from Match (err %v)", i, m, err)
			}
		}
	}
	gt, preds := gridBoxes(rng, 3), gridBoxes(rng, 1000)
	m := Matcher{0.7, 0.3, true}
	if _, err := m.MatchBoxes(&sc, gt, preds); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(10, func() { _, _ = m.MatchBoxes(&sc, gt, preds) }); n != 0 {
		t.Errorf("MatchBoxes: %v allocations per call, want 0", n)
	}
}

// TestMatchBoxesErrors checks MatchBoxes rejects what Match rejects.
func TestMatchBoxesErrors(t *testing.T) {
	var sc MatchScratch
	preds := []Box{{0, 0, 1, 1}}
	if _, err := (Matcher{0.7, 0.3, true}).MatchBoxes(&sc, nil, preds); !errors.Is(err, ErrNoGroundTruth) {
		t.Errorf("no GT: err = %v, want ErrNoGroundTruth", err)
	}
	if _, err := (Matcher{0.3, 0.7, false}).MatchBoxes(&sc, preds, preds); !errors.Is(err, ErrInput) {
		t.Errorf("low above high: err = %v, want ErrInput", err)
	}
	if _, err := (Matcher{0.7, 0.3, false}).MatchWith(&sc, nil); !errors.Is(err, ErrInput) {
		t.Errorf("nil matrix: err = %v, want ErrInput", err)
	}
}
