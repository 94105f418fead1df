package rpn

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/detlab/detlab/internal/golden"
	"github.com/detlab/detlab/lib/anchor"
	"github.com/detlab/detlab/lib/box"
	"github.com/detlab/detlab/lib/tensor"
	"github.com/detlab/detlab/lib/weights"
)

// selFixtureConfig is the part of a golden file's "config" metadata this
// package reads.
type selFixtureConfig struct {
	AnchorSizes       [][]float64 `json:"anchor_sizes"`
	AspectRatios      [][]float64 `json:"aspect_ratios"`
	PreNMSTopNTrain   int         `json:"rpn_pre_nms_top_n_train"`
	PreNMSTopNTest    int         `json:"rpn_pre_nms_top_n_test"`
	PostNMSTopNTrain  int         `json:"rpn_post_nms_top_n_train"`
	PostNMSTopNTest   int         `json:"rpn_post_nms_top_n_test"`
	NMSThresh         float64     `json:"rpn_nms_thresh"`
	FGIoUThresh       float64     `json:"rpn_fg_iou_thresh"`
	BGIoUThresh       float64     `json:"rpn_bg_iou_thresh"`
	BatchSizePerImage int         `json:"rpn_batch_size_per_image"`
	PositiveFraction  float64     `json:"rpn_positive_fraction"`
	ScoreThresh       float64     `json:"rpn_score_thresh"`
}

func selLoadConfig(t *testing.T, f *weights.File) (Config, *anchor.Generator) {
	t.Helper()
	var fc selFixtureConfig
	golden.Metadata(t, f, "config", &fc)
	c := Defaults()
	c.PreNMSTopNTrain, c.PreNMSTopNTest = fc.PreNMSTopNTrain, fc.PreNMSTopNTest
	c.PostNMSTopNTrain, c.PostNMSTopNTest = fc.PostNMSTopNTrain, fc.PostNMSTopNTest
	c.NMSThresh, c.ScoreThresh = fc.NMSThresh, fc.ScoreThresh
	c.FGIoUThresh, c.BGIoUThresh = fc.FGIoUThresh, fc.BGIoUThresh
	c.BatchSizePerImage, c.PositiveFraction = fc.BatchSizePerImage, fc.PositiveFraction
	if err := c.Validate(); err != nil {
		t.Fatalf("fixture config: %v", err)
	}
	var levels []anchor.Config
	for i := range fc.AnchorSizes {
		levels = append(levels, anchor.Config{Sizes: fc.AnchorSizes[i], AspectRatios: fc.AspectRatios[i]})
	}
	g, err := anchor.New(levels...)
	if err != nil {
		t.Fatalf("anchors: %v", err)
	}
	return c, g
}

// selFixtureAnchors generates the anchors of the fixture's padded batch.
func selFixtureAnchors(t *testing.T, f *weights.File, g *anchor.Generator) ([]box.Box, []int) {
	t.Helper()
	batch := golden.Entry(t, f, "transform.batch").Shape
	obj := golden.Entry(t, f, "rpn.objectness").Shape
	fs := [][2]int{{obj[2], obj[3]}}
	a, err := g.Generate(batch[2], batch[3], fs)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := g.NumAnchors(fs)
	return a, n
}

func selGoldenBoxes(t *testing.T, f *weights.File, name string) []box.Box {
	t.Helper()
	b, err := box.FromTensor(golden.Entry(t, f, name).Tensor())
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return b
}

func selImageSizes(t *testing.T) [][2]int {
	t.Helper()
	e := golden.Entry(t, golden.Load(t, "frcnn_eval.safetensors"), "transform.image_sizes")
	out := make([][2]int, e.Shape[0])
	for i := range out {
		out[i] = [2]int{int(e.I64Data[2*i]), int(e.I64Data[2*i+1])}
	}
	return out
}

func TestGoldenEvalProposals(t *testing.T) {
	f := golden.Load(t, "frcnn_eval.safetensors")
	c, g := selLoadConfig(t, f)
	anchors, perLevel := selFixtureAnchors(t, f, g)
	golden.Check(t, "rpn.anchors", box.Flatten(anchors), golden.Entry(t, f, "rpn.anchors").F32Data, golden.Tol{})

	obj, del, err := FlattenPredictions(
		[]*tensor.Tensor{golden.Entry(t, f, "rpn.objectness").Tensor()},
		[]*tensor.Tensor{golden.Entry(t, f, "rpn.bbox_deltas").Tensor()})
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "rpn.objectness_flat", obj.Data(), golden.Entry(t, f, "rpn.objectness_flat").F32Data, golden.Tol{})
	nImg, total := obj.Dim(0), obj.Dim(1)

	// The decoded boxes of all anchors (BoxCoder (1,1,1,1)).
	var decoded []float32
	for i := 0; i < nImg; i++ {
		d, err := Coder().Decode(del.Data()[4*i*total:4*(i+1)*total], anchors)
		if err != nil {
			t.Fatal(err)
		}
		decoded = append(decoded, box.Flatten(d)...)
	}
	golden.Check(t, "rpn.decoded", decoded, golden.Entry(t, f, "rpn.decoded").F32Data, golden.Tol{Atol: 2e-3, RelL2: 1e-6})

	// Top-n indices (one level in the fixture).
	p := c.Proposals(false)
	topIdx := golden.Entry(t, f, "rpn.topk_idx")
	k := topIdx.Shape[1]
	for i := 0; i < nImg; i++ {
		got := topKLogits(obj.Data()[i*total:(i+1)*total], min(p.PreNMSTopN, total))
		want := make([]int, k)
		for j := range want {
			want[j] = int(topIdx.I64Data[i*k+j])
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("image %d: top-n indices differ", i)
		}
	}

	sizes := selImageSizes(t)
	for i := 0; i < nImg; i++ {
		props, scores, err := FilterProposals(obj.Data()[i*total:(i+1)*total], del.Data()[4*i*total:4*(i+1)*total],
			anchors, perLevel, sizes[i][0], sizes[i][1], p)
		if err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("rpn.proposals.%d", i)
		want := golden.Entry(t, f, name)
		if !golden.CheckShape(t, name, []int{len(props), 4}, want.Shape) {
			continue
		}
		sn := fmt.Sprintf("rpn.proposal_scores.%d", i)
		wantScores := golden.Entry(t, f, sn).F32Data
		perm := golden.AlignNearTies(scores, wantScores, 1e-6, func(g, k int) bool {
			return golden.Compare(box.Flatten(props[g:g+1]), want.F32Data[4*k:4*k+4], golden.Tol{Atol: 1e-4}) == ""
		})
		props, scores = box.Select(props, perm), gather(nil, scores, perm)
		golden.Check(t, name, box.Flatten(props), want.F32Data, golden.Tol{Atol: 1e-4})
		golden.Check(t, sn, scores, wantScores, golden.Tol{Atol: 1e-6})
	}
}

func TestGoldenTrainTargets(t *testing.T) {
	f := golden.Load(t, "frcnn_train.safetensors")
	c, g := selLoadConfig(t, f)
	anchors, perLevel := selFixtureAnchors(t, f, g)
	obj, del, err := FlattenPredictions(
		[]*tensor.Tensor{golden.Entry(t, f, "rpn.objectness").Tensor()},
		[]*tensor.Tensor{golden.Entry(t, f, "rpn.bbox_deltas").Tensor()})
	if err != nil {
		t.Fatal(err)
	}
	nImg, total := obj.Dim(0), obj.Dim(1)
	sizes := selImageSizes(t)
	p := c.Proposals(true)
	for i := 0; i < nImg; i++ {
		gt := selGoldenBoxes(t, f, fmt.Sprintf("gt.boxes_resized.%d", i))
		tg, err := AssignTargets(anchors, gt, c)
		if err != nil {
			t.Fatal(err)
		}
		labels := make([]float32, len(tg.Labels))
		for j, l := range tg.Labels {
			labels[j] = float32(l)
		}
		golden.Check(t, fmt.Sprintf("rpn.labels.%d", i), labels, golden.Entry(t, f, fmt.Sprintf("rpn.labels.%d", i)).F32Data, golden.Tol{})
		rn := fmt.Sprintf("rpn.regression_targets.%d", i)
		golden.Check(t, rn, tg.RegressionTargets, golden.Entry(t, f, rn).F32Data, golden.Tol{Atol: 1e-4})

		// With the fixture's huge batch size every labelled anchor is sampled.
		pos, neg, err := SampleAnchors(tg.Labels, c, nil)
		if err != nil {
			t.Fatal(err)
		}
		var npos, nneg []int
		json.Unmarshal([]byte(f.Metadata["num_rpn_positive"]), &npos)
		json.Unmarshal([]byte(f.Metadata["num_rpn_negative"]), &nneg)
		if i < len(npos) && i < len(nneg) && (len(pos) != npos[i] || len(neg) != nneg[i]) {
			t.Errorf("image %d: sampled %d/%d anchors, want %d/%d", i, len(pos), len(neg), npos[i], nneg[i])
		}

		props, _, err := FilterProposals(obj.Data()[i*total:(i+1)*total], del.Data()[4*i*total:4*(i+1)*total],
			anchors, perLevel, sizes[i][0], sizes[i][1], p)
		if err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("rpn.proposals.%d", i)
		want := golden.Entry(t, f, name)
		if golden.CheckShape(t, name, []int{len(props), 4}, want.Shape) {
			golden.Check(t, name, box.Flatten(props), want.F32Data, golden.Tol{Atol: 1e-4})
		}
	}
}
