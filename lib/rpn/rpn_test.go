package rpn

import (
	"errors"
	"math"
	"math/rand"
	"slices"
	"testing"

	"github.com/detlab/detlab/lib/box"
	"github.com/detlab/detlab/lib/tensor"
)

func TestFlattenPredictions(t *testing.T) {
	// N=1, A=2, H=2, W=3: value = channel*100 + y*10 + x.
	const a, h, w = 2, 2, 3
	obj := tensor.New(1, a, h, w)
	del := tensor.New(1, 4*a, h, w)
	for c := 0; c < 4*a; c++ {
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				v := float32(c*100 + y*10 + x)
				if c < a {
					obj.Set(v, 0, c, y, x)
				}
				del.Set(v, 0, c, y, x)
			}
		}
	}
	o, d, err := FlattenPredictions([]*tensor.Tensor{obj}, []*tensor.Tensor{del})
	if err != nil {
		t.Fatal(err)
	}
	// Anchor row (y*W+x)*A+a: location (1,2), anchor 1 is row 11.
	if got := o.At(0, 11); got != 112 {
		t.Errorf("objectness row 11 = %v, want 112 (channel 1, y 1, x 2)", got)
	}
	// Its deltas are channels 4..7.
	for k := 0; k < 4; k++ {
		if got, want := d.At(0, 11, k), float32((4+k)*100+12); got != want {
			t.Errorf("delta %d of row 11 = %v, want %v", k, got, want)
		}
	}
	bad := []struct {
		name     string
		obj, del []*tensor.Tensor
	}{
		{"no levels", nil, nil},
		{"nil tensor", []*tensor.Tensor{nil}, []*tensor.Tensor{del}},
		{"3-d", []*tensor.Tensor{tensor.New(a, h, w)}, []*tensor.Tensor{del}},
		{"deltas not 4A", []*tensor.Tensor{obj}, []*tensor.Tensor{tensor.New(1, 3*a, h, w)}},
		{"spatial mismatch", []*tensor.Tensor{obj}, []*tensor.Tensor{tensor.New(1, 4*a, h, w+1)}},
		{"batch mismatch across levels", []*tensor.Tensor{obj, tensor.New(2, a, h, w)}, []*tensor.Tensor{del, tensor.New(2, 4*a, h, w)}},
	}
	for _, tc := range bad {
		if _, _, err := FlattenPredictions(tc.obj, tc.del); !errors.Is(err, ErrInput) {
			t.Errorf("%s: err %v, want ErrInput", tc.name, err)
		}
	}
}

func TestFilterProposalsSmall(t *testing.T) {
	anchors := []box.Box{box.New(0, 0, 10, 10), box.New(1, 1, 11, 11), box.New(30, 30, 40, 40), box.New(-20, -20, -10, -10), box.New(50, 50, 60, 60)}
	obj := []float32{2, 3, 1, 4, float32(math.NaN())}
	deltas := make([]float32, 4*len(anchors))
	p := ProposalParams{PreNMSTopN: 10, PostNMSTopN: 10, NMSThresh: 0.7, MinSize: 1e-3}
	boxes, scores, err := FilterProposals(obj, deltas, anchors, []int{5}, 100, 100, p)
	if err != nil {
		t.Fatal(err)
	}
	// Anchor 3 lies outside the image and clips to a zero-size box; anchor 4
	// has a NaN logit; anchor 0 is suppressed by anchor 1 (IoU 0.68 < 0.7 so
	// it is NOT suppressed).
	want := []box.Box{box.New(1, 1, 11, 11), box.New(0, 0, 10, 10), box.New(30, 30, 40, 40)}
	if !slices.Equal(boxes, want) {
		t.Errorf("boxes %v, want %v", boxes, want)
	}
	if len(scores) != 3 || scores[0] != proposalSigmoid(3) || !slices.IsSortedFunc(scores, func(a, b float32) int { return int(b*1e6 - a*1e6) }) {
		t.Errorf("scores %v", scores)
	}
	// Pre-NMS top-n per level: two levels, one proposal each.
	p.PreNMSTopN = 1
	boxes, _, _ = FilterProposals(obj, deltas, anchors, []int{2, 3}, 100, 100, p)
	if want := []box.Box{box.New(1, 1, 11, 11)}; !slices.Equal(boxes, want) {
		t.Errorf("top-1 per level: %v, want %v (level 1's best, anchor 3, lies outside the image)", boxes, want)
	}
	// Post-NMS top-n.
	p.PreNMSTopN, p.PostNMSTopN = 10, 1
	boxes, _, _ = FilterProposals(obj, deltas, anchors, []int{5}, 100, 100, p)
	if len(boxes) != 1 {
		t.Errorf("post top-1 kept %d", len(boxes))
	}
	// Score threshold.
	p.PostNMSTopN, p.ScoreThresh = 10, 0.9
	boxes, _, _ = FilterProposals(obj, deltas, anchors, []int{5}, 100, 100, p)
	if want := []box.Box{box.New(1, 1, 11, 11)}; !slices.Equal(boxes, want) {
		t.Errorf("score >= 0.9: %v, want %v", boxes, want)
	}
	bad := []struct {
		name string
		run  func() error
	}{
		{"logit count", func() error {
			_, _, err := FilterProposals(obj[:4], deltas, anchors, []int{5}, 100, 100, p)
			return err
		}},
		{"delta count", func() error {
			_, _, err := FilterProposals(obj, deltas[:4], anchors, []int{5}, 100, 100, p)
			return err
		}},
		{"levels", func() error { _, _, err := FilterProposals(obj, deltas, anchors, []int{4}, 100, 100, p); return err }},
		{"image size", func() error { _, _, err := FilterProposals(obj, deltas, anchors, []int{5}, 0, 100, p); return err }},
		{"top-n", func() error {
			_, _, err := FilterProposals(obj, deltas, anchors, []int{5}, 100, 100, ProposalParams{})
			return err
		}},
	}
	for _, tc := range bad {
		if err := tc.run(); !errors.Is(err, ErrInput) {
			t.Errorf("%s: err %v, want ErrInput", tc.name, err)
		}
	}
}

func TestAssignTargets(t *testing.T) {
	c := Defaults()
	anchors := []box.Box{box.New(0, 0, 10, 10), box.New(0, 0, 10, 8), box.New(0, 0, 10, 5), box.New(100, 100, 110, 110), box.New(2, 2, 12, 12)}
	gt := []box.Box{box.New(0, 0, 10, 10)}
	tg, err := AssignTargets(anchors, gt, c)
	if err != nil {
		t.Fatal(err)
	}
	// IoU with the GT: 1, 0.8, 0.5, 0, 0.47.
	if want := []int{1, 1, -1, 0, -1}; !slices.Equal(tg.Labels, want) {
		t.Errorf("labels %v, want %v", tg.Labels, want)
	}
	if len(tg.RegressionTargets) != 4*len(anchors) || tg.RegressionTargets[0] != 0 {
		t.Errorf("targets %v", tg.RegressionTargets)
	}
	// A second GT overlapping nothing has best IoU 0, so (torchvision's
	// low-quality quirk) every anchor with IoU 0 with it, here all of them,
	// becomes a match to its own best GT: all anchors turn positive.
	tg, _ = AssignTargets(anchors, append(gt, box.New(200, 200, 220, 220)), c)
	if want := []int{1, 1, 1, 1, 1}; !slices.Equal(tg.Labels, want) {
		t.Errorf("labels with a far GT %v, want %v", tg.Labels, want)
	}
	if !slices.Equal(tg.MatchedGT, []int{0, 0, 0, 0, 0}) {
		t.Errorf("matched %v", tg.MatchedGT)
	}

	// No GT: every anchor is background; targets are -Inf in dw, dh.
	tg, err = AssignTargets(anchors, nil, c)
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range tg.Labels {
		if l != 0 || tg.MatchedGT[i] != 0 {
			t.Errorf("no GT: anchor %d label %d matched %d", i, l, tg.MatchedGT[i])
		}
	}
	if !math.IsInf(float64(tg.RegressionTargets[2]), -1) {
		t.Errorf("no GT: dw target %v, want -Inf as torchvision", tg.RegressionTargets[2])
	}
	pos, neg, err := SampleAnchors(tg.Labels, c, nil)
	if err != nil || len(pos) != 0 || len(neg) != len(anchors) {
		t.Errorf("no GT sampling: %v %v %v", pos, neg, err)
	}

	if _, err := AssignTargets(anchors, []box.Box{box.New(float32(math.NaN()), 0, 1, 1)}, c); !errors.Is(err, ErrInput) {
		t.Errorf("NaN GT: %v", err)
	}
	bad := c
	bad.BGIoUThresh = 0.9
	if _, err := AssignTargets(anchors, gt, bad); !errors.Is(err, ErrInput) {
		t.Errorf("bad config: %v", err)
	}
	if tg, err := AssignTargets(nil, gt, c); err != nil || len(tg.Labels) != 0 {
		t.Errorf("no anchors: %v %v", tg, err)
	}
}

func TestSampleAnchorsDeterministic(t *testing.T) {
	labels := make([]int, 1000)
	for i := range labels {
		labels[i] = i % 3 // 0, 1, 2 -> background, positive, positive
		if i%3 == 2 {
			labels[i] = -1
		}
	}
	c := Defaults()
	p1, n1, err := SampleAnchors(labels, c, rand.New(rand.NewSource(5)))
	if err != nil {
		t.Fatal(err)
	}
	p2, n2, _ := SampleAnchors(labels, c, rand.New(rand.NewSource(5)))
	if !slices.Equal(p1, p2) || !slices.Equal(n1, n2) {
		t.Error("same seed gave different samples")
	}
	if len(p1) != 128 || len(n1) != 128 {
		t.Errorf("sampled %d/%d, want 128/128", len(p1), len(n1))
	}
	if _, _, err := SampleAnchors(labels, c, nil); err == nil {
		t.Error("nil rng with subsampling needed: no error")
	}
}

func TestConfig(t *testing.T) {
	c := Defaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if p := c.Proposals(true); p.PreNMSTopN != 2000 || p.PostNMSTopN != 2000 {
		t.Errorf("train params %+v", p)
	}
	if p := c.Proposals(false); p.PreNMSTopN != 1000 || p.PostNMSTopN != 1000 || p.NMSThresh != 0.7 || p.MinSize != 1e-3 {
		t.Errorf("test params %+v", p)
	}
	c.NMSThresh = math.NaN()
	if err := c.Validate(); !errors.Is(err, ErrInput) {
		t.Errorf("NaN threshold: %v", err)
	}
}

func TestSampleBatch(t *testing.T) {
	labels := [][]int{{1, 0, -1, 0}, {0, 1, 1, -1}}
	pos, neg, err := SampleBatch(labels, Defaults(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(pos, []int{0, 5, 6}) || !slices.Equal(neg, []int{1, 3, 4}) {
		t.Errorf("pos %v neg %v", pos, neg)
	}
	if _, _, err := SampleBatch([][]int{{1}, {1, 0}}, Defaults(), nil); !errors.Is(err, ErrInput) {
		t.Errorf("ragged labels: %v", err)
	}
}

// TestProposalScratchReuse checks that one ProposalScratch reused over
// inputs of different sizes (both batched-NMS paths) gives
// FilterProposals's proposals and scores each time, and that a reused
// call allocates nothing.
func TestProposalScratchReuse(t *testing.T) {
	rng := rand.New(rand.NewSource(4))
	input := func(perLevel []int) (obj, deltas []float32, anchors []box.Box) {
		for _, k := range perLevel {
			for range k {
				x, y := rng.Float32()*300, rng.Float32()*300
				s := 8 + rng.Float32()*64
				anchors = append(anchors, box.New(x-s, y-s, x+s, y+s))
				obj = append(obj, float32(rng.NormFloat64()))
				for range 4 {
					deltas = append(deltas, float32(rng.NormFloat64()*0.2))
				}
			}
		}
		return obj, deltas, anchors
	}
	p := ProposalParams{PreNMSTopN: 1200, PostNMSTopN: 300, NMSThresh: 0.7, ScoreThresh: 0.05, MinSize: 1e-3}
	var s ProposalScratch
	for _, perLevel := range [][]int{{1500, 700}, {40}, {900}, {1500, 700}} {
		obj, deltas, anchors := input(perLevel)
		wantBoxes, wantScores, err := FilterProposals(obj, deltas, anchors, perLevel, 300, 280, p)
		if err != nil {
			t.Fatal(err)
		}
		gotBoxes, gotScores, err := s.Filter(nil, obj, deltas, anchors, perLevel, 300, 280, p)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(gotBoxes, wantBoxes) || !slices.Equal(gotScores, wantScores) {
			t.Fatalf("levels %v: reused scratch kept %d proposals, FilterProposals %d (or they differ)", perLevel, len(gotBoxes), len(wantBoxes))
		}
		allocs := testing.AllocsPerRun(5, func() {
			if _, _, err := s.Filter(nil, obj, deltas, anchors, perLevel, 300, 280, p); err != nil {
				t.Fatal(err)
			}
		})
		// A collection may empty the NMS workspace pool once.
		if allocs >= 1 {
			t.Errorf("levels %v: %.1f allocations per reused Filter, want 0", perLevel, allocs)
		}
	}
	if _, _, err := s.Filter(nil, []float32{1}, nil, []box.Box{box.New(0, 0, 1, 1)}, []int{1}, 10, 10, p); !errors.Is(err, ErrInput) {
		t.Errorf("missing deltas: err %v, want ErrInput", err)
	}
}

// TestFlattenPredictionsTo checks that flattening into reused buffers
// (longer than needed, holding stale values) gives FlattenPredictions's
// values, and that bad input fails the same way.
func TestFlattenPredictionsTo(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	random := func(shape ...int) *tensor.Tensor {
		x := tensor.New(shape...)
		for i := range x.Data() {
			x.Data()[i] = rng.Float32()
		}
		return x
	}
	objBuf, delBuf := make([]float32, 1000), make([]float32, 4000)
	for i := range delBuf {
		delBuf[i] = -1
	}
	for _, s := range [][3]int{{3, 4, 5}, {2, 2, 3}} {
		a, h, w := s[0], s[1], s[2]
		objs := []*tensor.Tensor{random(2, a, h, w), random(2, a, h+1, w)}
		dels := []*tensor.Tensor{random(2, 4*a, h, w), random(2, 4*a, h+1, w)}
		wantO, wantD, err := FlattenPredictions(objs, dels)
		if err != nil {
			t.Fatal(err)
		}
		o, d, n, total, err := FlattenPredictionsTo(objBuf, delBuf, objs, dels)
		if err != nil {
			t.Fatal(err)
		}
		if n != 2 || total != wantO.Shape()[1] || !slices.Equal(o, wantO.Data()) || !slices.Equal(d, wantD.Data()) {
			t.Errorf("a=%d h=%d w=%d: into reused buffers: n %d total %d, values differ from FlattenPredictions's", a, h, w, n, total)
		}
		objBuf, delBuf = o, d
	}
	if _, _, _, _, err := FlattenPredictionsTo(nil, nil, []*tensor.Tensor{random(1, 2, 3, 3)}, nil); !errors.Is(err, ErrInput) {
		t.Errorf("missing deltas: err %v, want ErrInput", err)
	}
}
