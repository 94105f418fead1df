package roi

import (
	"errors"
	"math"
	"math/rand"
	"slices"
	"testing"

	"github.com/detlab/detlab/lib/box"
)

func TestSelectTrainingSamples(t *testing.T) {
	c := Defaults()
	props := []box.Box{box.New(0, 0, 10, 10), box.New(0, 0, 10, 4), box.New(50, 50, 60, 60), box.New(52, 50, 62, 60)}
	gt := []box.Box{box.New(0, 0, 10, 9), box.New(50, 50, 60, 60)}
	s, err := SelectTrainingSamples(props, gt, []int{3, 1}, c, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Proposals + GT, all sampled, ascending: IoUs 0.9 (GT0), 0.44 (bg),
	// 1 (GT1), 0.67 (GT1), then the GT boxes themselves.
	if len(s.Proposals) != 6 || s.Proposals[4] != gt[0] || s.Proposals[5] != gt[1] {
		t.Fatalf("proposals %v", s.Proposals)
	}
	if want := []int{3, 0, 1, 1, 3, 1}; !slices.Equal(s.Labels, want) {
		t.Errorf("labels %v, want %v", s.Labels, want)
	}
	if want := []int{0, 0, 1, 1, 0, 1}; !slices.Equal(s.MatchedIdxs, want) {
		t.Errorf("matched %v, want %v", s.MatchedIdxs, want)
	}
	if len(s.RegressionTargets) != 24 || s.RegressionTargets[4*4] != 0 {
		t.Errorf("targets %v (a GT box encodes to zeros against itself)", s.RegressionTargets)
	}

	// Sampling: batch 2 with 0.5 positive -> one positive, one negative.
	c2 := c
	c2.BatchSizePerImage, c2.PositiveFraction = 2, 0.5
	s, err = SelectTrainingSamples(props, gt, []int{3, 1}, c2, rand.New(rand.NewSource(1)))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Labels) != 2 || s.Labels[0] == 0 && s.Labels[1] == 0 || s.Labels[0] != 0 && s.Labels[1] != 0 {
		t.Errorf("batch 2: labels %v", s.Labels)
	}
	if _, err := SelectTrainingSamples(props, gt, []int{3, 1}, c2, nil); err == nil {
		t.Error("subsampling without rng: no error")
	}
}

func TestSelectTrainingSamplesNoGT(t *testing.T) {
	props := []box.Box{box.New(0, 0, 10, 10), box.New(5, 5, 20, 20)}
	s, err := SelectTrainingSamples(props, nil, nil, Defaults(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(s.Labels, []int{0, 0}) || !slices.Equal(s.MatchedIdxs, []int{0, 0}) || len(s.Proposals) != 2 {
		t.Errorf("no GT: %+v", s)
	}
	if !math.IsInf(float64(s.RegressionTargets[2]), -1) {
		t.Errorf("no GT: dw target %v, want -Inf (zero box, as torchvision)", s.RegressionTargets[2])
	}
	// No proposals and no GT: nothing to sample.
	if s, err := SelectTrainingSamples(nil, nil, nil, Defaults(), nil); err != nil || len(s.Proposals) != 0 {
		t.Errorf("empty: %+v %v", s, err)
	}
}

func TestSelectTrainingSamplesBadInput(t *testing.T) {
	props := []box.Box{box.New(0, 0, 10, 10)}
	bad := Defaults()
	bad.BBoxRegWeights = [4]float64{10, 10, 0, 5}
	tests := []struct {
		name   string
		gt     []box.Box
		labels []int
		c      Config
	}{
		{"label count", []box.Box{box.New(0, 0, 1, 1)}, nil, Defaults()},
		{"negative label", []box.Box{box.New(0, 0, 1, 1)}, []int{-2}, Defaults()},
		{"NaN GT", []box.Box{box.New(0, float32(math.NaN()), 1, 1)}, []int{1}, Defaults()},
		{"zero coder weight", nil, nil, bad},
	}
	for _, tc := range tests {
		if _, err := SelectTrainingSamples(props, tc.gt, tc.labels, tc.c, nil); !errors.Is(err, ErrInput) {
			t.Errorf("%s: err %v, want ErrInput", tc.name, err)
		}
	}
}

func TestPostprocessDetections(t *testing.T) {
	c := Defaults()
	const nc = 3
	props := []box.Box{box.New(10, 10, 50, 50), box.New(12, 10, 52, 50), box.New(-30, -30, -10, -10), box.New(0, 0, 10, 10)}
	logits := []float32{
		0, 5, 1, // proposal 0: class 1
		0, 4, 4, // proposal 1: classes 1 and 2 tie
		0, 9, 0, // proposal 2: outside the image -> clipped to nothing
		float32(math.NaN()), 0, 0, // proposal 3: NaN
	}
	reg := make([]float32, 4*nc*len(props))
	det, err := PostprocessDetections(logits, reg, props, nc, 100, 100, c)
	if err != nil {
		t.Fatal(err)
	}
	// Proposal 1's class-1 box (IoU 0.9 with proposal 0's) is suppressed;
	// its class-2 box is kept (other class). Proposal 0's class-2 score
	// (0.0171) is below 0.05.
	if want := []int{1, 2}; !slices.Equal(det.Labels, want) {
		t.Fatalf("labels %v, want %v (boxes %v scores %v)", det.Labels, want, det.Boxes, det.Scores)
	}
	if det.Boxes[0] != props[0] || det.Boxes[1] != props[1] {
		t.Errorf("boxes %v", det.Boxes)
	}
	if det.Scores[0] <= det.Scores[1] {
		t.Errorf("scores not decreasing: %v", det.Scores)
	}
	c.DetectionsPerImg = 1
	det, _ = PostprocessDetections(logits, reg, props, nc, 100, 100, c)
	if len(det.Boxes) != 1 {
		t.Errorf("top-1 kept %d", len(det.Boxes))
	}
	// Score threshold is strict.
	c = Defaults()
	c.ScoreThresh = 1
	det, _ = PostprocessDetections(logits, reg, props, nc, 100, 100, c)
	if len(det.Boxes) != 0 {
		t.Errorf("threshold 1 kept %v", det.Scores)
	}
	// No proposals: no detections.
	det, err = PostprocessDetections(nil, nil, nil, nc, 100, 100, Defaults())
	if err != nil || len(det.Boxes) != 0 {
		t.Errorf("empty: %+v %v", det, err)
	}
	bad := []struct {
		name string
		run  func() error
	}{
		{"logit count", func() error {
			_, err := PostprocessDetections(logits[:3], reg, props, nc, 100, 100, Defaults())
			return err
		}},
		{"delta count", func() error {
			_, err := PostprocessDetections(logits, reg[:4], props, nc, 100, 100, Defaults())
			return err
		}},
		{"one class", func() error { _, err := PostprocessDetections(nil, nil, nil, 1, 100, 100, Defaults()); return err }},
		{"image size", func() error { _, err := PostprocessDetections(logits, reg, props, nc, 100, -1, Defaults()); return err }},
		{"detections per image", func() error {
			c := Defaults()
			c.DetectionsPerImg = 0
			_, err := PostprocessDetections(logits, reg, props, nc, 100, 100, c)
			return err
		}},
	}
	for _, tc := range bad {
		if err := tc.run(); !errors.Is(err, ErrInput) {
			t.Errorf("%s: err %v, want ErrInput", tc.name, err)
		}
	}
}

func TestSoftmax32(t *testing.T) {
	out := make([]float32, 3)
	detectionSoftmax([]float32{1000, 1000, -1000}, out)
	if out[0] != 0.5 || out[1] != 0.5 || out[2] != 0 {
		t.Errorf("softmax of large logits %v", out)
	}
}
