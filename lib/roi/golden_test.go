package roi

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"github.com/detlab/detlab/internal/golden"
	"github.com/detlab/detlab/lib/box"
	"github.com/detlab/detlab/lib/weights"
)

// selFixtureConfig is the part of a golden file's "config" metadata this
// package reads.
type selFixtureConfig struct {
	NumClasses        int       `json:"num_classes"`
	FGIoUThresh       float64   `json:"box_fg_iou_thresh"`
	BGIoUThresh       float64   `json:"box_bg_iou_thresh"`
	BatchSizePerImage int       `json:"box_batch_size_per_image"`
	PositiveFraction  float64   `json:"box_positive_fraction"`
	ScoreThresh       float64   `json:"box_score_thresh"`
	NMSThresh         float64   `json:"box_nms_thresh"`
	DetectionsPerImg  int       `json:"box_detections_per_img"`
	BBoxRegWeights    []float64 `json:"bbox_reg_weights"`
}

func selLoadConfig(t *testing.T, f *weights.File) (Config, int) {
	t.Helper()
	var fc selFixtureConfig
	golden.Metadata(t, f, "config", &fc)
	c := Defaults()
	c.FGIoUThresh, c.BGIoUThresh = fc.FGIoUThresh, fc.BGIoUThresh
	c.BatchSizePerImage, c.PositiveFraction = fc.BatchSizePerImage, fc.PositiveFraction
	c.ScoreThresh, c.NMSThresh, c.DetectionsPerImg = fc.ScoreThresh, fc.NMSThresh, fc.DetectionsPerImg
	if fc.BBoxRegWeights != nil { // null means torchvision's (10, 10, 5, 5)
		copy(c.BBoxRegWeights[:], fc.BBoxRegWeights)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("fixture config: %v", err)
	}
	return c, fc.NumClasses
}

func selGoldenBoxes(t *testing.T, f *weights.File, name string) []box.Box {
	t.Helper()
	b, err := box.FromTensor(golden.Entry(t, f, name).Tensor())
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return b
}

func selGoldenInts(t *testing.T, f *weights.File, name string) []int {
	t.Helper()
	e := golden.Entry(t, f, name)
	out := make([]int, len(e.I64Data))
	for i, v := range e.I64Data {
		out[i] = int(v)
	}
	return out
}

func TestGoldenPostprocess(t *testing.T) {
	f := golden.Load(t, "frcnn_eval.safetensors")
	c, numClasses := selLoadConfig(t, f)
	logits := golden.Entry(t, f, "roi.class_logits")
	reg := golden.Entry(t, f, "roi.box_regression")
	if logits.Shape[1] != numClasses || reg.Shape[1] != 4*numClasses {
		t.Fatalf("box head outputs %v / %v for %d classes", logits.Shape, reg.Shape, numClasses)
	}
	perImage := selGoldenInts(t, f, "roi.proposals_per_image")
	sizes := selGoldenInts(t, f, "transform.image_sizes")
	start := 0
	for i, n := range perImage {
		props := selGoldenBoxes(t, f, fmt.Sprintf("rpn.proposals.%d", i))
		if len(props) != n {
			t.Fatalf("image %d: %d proposals, proposals_per_image says %d", i, len(props), n)
		}
		det, err := PostprocessDetections(
			logits.F32Data[start*numClasses:(start+n)*numClasses],
			reg.F32Data[4*start*numClasses:4*(start+n)*numClasses],
			props, numClasses, sizes[2*i], sizes[2*i+1], c)
		if err != nil {
			t.Fatal(err)
		}
		start += n
		bn := fmt.Sprintf("detections.boxes_resized.%d", i)
		want := golden.Entry(t, f, bn)
		if !golden.CheckShape(t, bn, []int{len(det.Boxes), 4}, want.Shape) {
			continue
		}
		sn := fmt.Sprintf("detections.scores.%d", i)
		ln := fmt.Sprintf("detections.labels.%d", i)
		wantScores, wl := golden.Entry(t, f, sn).F32Data, selGoldenInts(t, f, ln)
		perm := golden.AlignNearTies(det.Scores, wantScores, 1e-5, func(g, k int) bool {
			return det.Labels[g] == wl[k] && golden.Compare(box.Flatten(det.Boxes[g:g+1]), want.F32Data[4*k:4*k+4], golden.Tol{Atol: 1e-3}) == ""
		})
		det = Detections{Boxes: box.Select(det.Boxes, perm), Scores: detGatherF32(det.Scores, perm), Labels: detGatherInt(det.Labels, perm)}
		golden.Check(t, bn, box.Flatten(det.Boxes), want.F32Data, golden.Tol{Atol: 1e-3})
		golden.Check(t, sn, det.Scores, wantScores, golden.Tol{Atol: 1e-5})
		if !slices.Equal(det.Labels, wl) {
			t.Errorf("%s: got %v, want %v", ln, det.Labels, wl)
		}
	}
}

func TestGoldenTrainingSamples(t *testing.T) {
	f := golden.Load(t, "frcnn_train.safetensors")
	c, _ := selLoadConfig(t, f)
	var npos []int
	if err := json.Unmarshal([]byte(f.Metadata["num_roi_positive"]), &npos); err != nil {
		t.Fatalf("num_roi_positive metadata: %v", err)
	}
	for i := 0; golden.Has(f, fmt.Sprintf("rpn.proposals.%d", i)); i++ {
		props := selGoldenBoxes(t, f, fmt.Sprintf("rpn.proposals.%d", i))
		gt := selGoldenBoxes(t, f, fmt.Sprintf("gt.boxes_resized.%d", i))
		labels := selGoldenInts(t, f, fmt.Sprintf("gt.labels.%d", i))
		// The fixture's batch size keeps every proposal, so no random draw.
		s, err := SelectTrainingSamples(props, gt, labels, c, nil)
		if err != nil {
			t.Fatal(err)
		}
		pn := fmt.Sprintf("roi.proposals.%d", i)
		want := golden.Entry(t, f, pn)
		if !golden.CheckShape(t, pn, []int{len(s.Proposals), 4}, want.Shape) {
			continue
		}
		golden.Check(t, pn, box.Flatten(s.Proposals), want.F32Data, golden.Tol{Atol: 1e-4})
		for _, tc := range []struct {
			name string
			got  []int
		}{{"roi.matched_idxs", s.MatchedIdxs}, {"roi.labels", s.Labels}} {
			if w := selGoldenInts(t, f, fmt.Sprintf("%s.%d", tc.name, i)); !slices.Equal(tc.got, w) {
				t.Errorf("%s.%d differs", tc.name, i)
			}
		}
		rn := fmt.Sprintf("roi.regression_targets.%d", i)
		golden.Check(t, rn, s.RegressionTargets, golden.Entry(t, f, rn).F32Data, golden.Tol{Atol: 1e-3})
		pos := 0
		for _, l := range s.Labels {
			if l > 0 {
				pos++
			}
		}
		if i < len(npos) && pos != npos[i] {
			t.Errorf("image %d: %d positives, want %d", i, pos, npos[i])
		}
	}
}
