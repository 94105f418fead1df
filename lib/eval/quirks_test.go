package eval

import (
	"math"
	"testing"
)

// TestPycocotoolsQuirks pins behaviours of pycocotools that EvaluateCOCO
// keeps on purpose (the fixtures do not exercise them).
func TestPycocotoolsQuirks(t *testing.T) {
	a := XYWH{10, 10, 20, 20}
	b := XYWH{50, 50, 20, 20}
	cats := []Category{{ID: 1, Name: "x"}}
	cases := []struct {
		name   string
		gt     *COCOGroundTruth
		dts    []Detection
		ap50   float64
		ar100  float64
		nGT    int
		detail string
	}{
		{
			name: "ground truth id 0 never gives a true positive",
			gt: &COCOGroundTruth{Images: []Image{{ID: 1}}, Categories: cats,
				Annotations: []Annotation{{ID: 0, ImageID: 1, CategoryID: 1, BBox: a, Area: 400}}},
			dts:  []Detection{{ImageID: 1, CategoryID: 1, BBox: a, Score: 0.9}},
			ap50: 0, ar100: 0, nGT: 1,
			detail: "matches are recorded as the GT id and 0 means none",
		},
		{
			name: "duplicate ids: the last annotation stands in for all",
			gt: &COCOGroundTruth{Images: []Image{{ID: 1}, {ID: 2}}, Categories: cats,
				Annotations: []Annotation{
					{ID: 5, ImageID: 1, CategoryID: 1, BBox: a, Area: 400},
					{ID: 5, ImageID: 2, CategoryID: 1, BBox: b, Area: 400},
				}},
			// Image 2 now holds b twice; the detection on a (image 1) is a FP.
			dts: []Detection{
				{ImageID: 1, CategoryID: 1, BBox: a, Score: 0.9},
				{ImageID: 2, CategoryID: 1, BBox: b, Score: 0.8},
			},
			// FP then TP, 2 positives: precision 1/2 up to recall 1/2.
			ap50: 51 * (1 / (2 + eps)) / 101, ar100: 0.5, nGT: 2,
		},
		{
			name: "annotations of unlisted images or categories are not evaluated",
			gt: &COCOGroundTruth{Images: []Image{{ID: 1}}, Categories: cats,
				Annotations: []Annotation{
					{ID: 1, ImageID: 1, CategoryID: 1, BBox: a, Area: 400},
					{ID: 2, ImageID: 3, CategoryID: 1, BBox: b, Area: 400},
					{ID: 3, ImageID: 1, CategoryID: 4, BBox: b, Area: 400},
				}},
			dts:  []Detection{{ImageID: 1, CategoryID: 1, BBox: a, Score: 0.9}},
			ap50: 1 / (1 + eps), ar100: 1, nGT: 1,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := EvaluateCOCO(c.gt, c.dts)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(res.AP50-c.ap50) > 1e-15 || math.Abs(res.AR100-c.ar100) > 1e-15 || res.Counts.GT != c.nGT {
				t.Errorf("AP50 %.17g AR100 %v GT %d; want %.17g %v %d (%s)", res.AP50, res.AR100, res.Counts.GT, c.ap50, c.ar100, c.nGT, c.detail)
			}
		})
	}
}
