package eval

import (
	"math"
	"testing"

	"github.com/detlab/detlab/lib/box"
)

// xywh builds a detlab box from COCO's x, y, w, h (exact for integers).
func xywh(x, y, w, h float32) box.Box { return box.New(x, y, x+w, y+h) }

// handEvaluator is the README's worked "hand" case through detlab's types.
func handEvaluator(t testing.TB) *Evaluator {
	ev := NewCOCO([]Category{{ID: 1, Name: "cat"}, {ID: 2, Name: "dog"}})
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(ev.AddGroundTruth(GroundTruth{ImageID: 1,
		Boxes:  []box.Box{xywh(10, 10, 20, 20), xywh(50, 50, 20, 20), xywh(10, 60, 30, 30)},
		Labels: []int{1, 1, 2}}))
	must(ev.AddGroundTruth(GroundTruth{ImageID: 2,
		Boxes:  []box.Box{xywh(0, 0, 40, 40), xywh(60, 0, 30, 30), xywh(60, 60, 20, 20)},
		Labels: []int{1, 2, 2}}))
	must(ev.AddDetections(Detections{ImageID: 1,
		Boxes:  []box.Box{xywh(10, 10, 20, 20), xywh(52, 52, 20, 20), xywh(10, 60, 30, 30), xywh(10, 60, 30, 30)},
		Labels: []int{1, 1, 2, 2}, Scores: []float32{0.9, 0.8, 0.95, 0.3}}))
	must(ev.AddDetections(Detections{ImageID: 2,
		Boxes:  []box.Box{xywh(0, 0, 40, 20), xywh(70, 70, 10, 10), xywh(60, 0, 30, 15), xywh(60, 60, 20, 20)},
		Labels: []int{1, 1, 2, 2}, Scores: []float32{0.7, 0.6, 0.5, 0.4}}))
	return ev
}

// TestHandCase checks the README's worked example through the Evaluator:
// the numbers pycocotools printed for hand.gt.json / hand.dt.json.
func TestHandCase(t *testing.T) {
	res, err := handEvaluator(t).Evaluate()
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{0.5499999999999999, 1.0, 0.4455445544554455, 0.650990099009901, 0.09999999999999999, -1,
		0.3666666666666666, 0.6, 0.6, 0.7, 0.1, -1}
	for i, g := range res.Stats() {
		if math.Abs(g-want[i]) > 1e-12 {
			t.Errorf("stats[%d] = %.17g, want %.17g", i, g, want[i])
		}
	}
	cat, _ := res.Class(1)
	dog, _ := res.Class(2)
	if math.Abs(cat.AP-506.0/1010) > 1e-12 || math.Abs(dog.AP-605.0/1010) > 1e-12 {
		t.Errorf("per-class AP cat %v dog %v, want 506/1010 and 605/1010", cat.AP, dog.AP)
	}
	if cat.Name != "cat" || cat.NumGT != 3 || cat.NumDetections != 4 {
		t.Errorf("cat = %q, %d gt, %d dets", cat.Name, cat.NumGT, cat.NumDetections)
	}
	// At IoU .5 both classes go TP TP TP FP: the VOC area is exactly 1.
	if cat.VOCAP50 != 1 || dog.VOCAP50 != 1 || res.VOCAP50 != 1 {
		t.Errorf("VOC AP50 cat %v dog %v mean %v, want 1", cat.VOCAP50, dog.VOCAP50, res.VOCAP50)
	}
	// dog at IoU .55: 34 thresholds at 1, 33 at 2/3, the rest 0.
	pr, err := res.PR(2, 0.55)
	if err != nil {
		t.Fatal(err)
	}
	for r, p := range pr.Precision {
		want := 0.0
		switch {
		case r < 34:
			want = 1 / (1 + eps)
		case r < 67:
			want = 2.0 / 3
		}
		if p != want {
			t.Errorf("dog PR@.55 at recall %v = %v, want %v", pr.Recall[r], p, want)
		}
	}
	if _, err := res.PR(3, 0.5); err == nil {
		t.Error("PR of an unknown class: no error")
	}
	if _, err := res.PR(1, 0.52); err == nil {
		t.Error("PR at a non-threshold IoU: no error")
	}
}

// TestSmallCases are hand-worked one-image cases; AP values are exact.
func TestSmallCases(t *testing.T) {
	one := 1 / (1 + eps) // a leading TP: 1/(1+eps) = 0.9999999999999998
	g := xywh(10, 10, 40, 40)
	cases := []struct {
		name           string
		gt             GroundTruth
		dt             Detections
		ap, ap50, ar   float64
		voc            float64
		classAP        float64 // class 1
		dropped, nDets int
	}{
		{
			name: "perfect",
			gt:   GroundTruth{Boxes: []box.Box{g}, Labels: []int{1}},
			dt:   Detections{Boxes: []box.Box{g}, Labels: []int{1}, Scores: []float32{0.9}},
			ap:   one, ap50: one, ar: 1, voc: 1, classAP: one, nDets: 1,
		},
		{
			name: "false positive scored above the true one",
			gt:   GroundTruth{Boxes: []box.Box{g}, Labels: []int{1}},
			dt: Detections{Boxes: []box.Box{xywh(200, 200, 40, 40), g}, Labels: []int{1, 1},
				Scores: []float32{0.9, 0.8}},
			ap: 0.5, ap50: 0.5, ar: 1, voc: 0.5, classAP: 0.5, nDets: 2,
		},
		{
			name: "false positive scored below the true one",
			gt:   GroundTruth{Boxes: []box.Box{g}, Labels: []int{1}},
			dt: Detections{Boxes: []box.Box{g, xywh(200, 200, 40, 40)}, Labels: []int{1, 1},
				Scores: []float32{0.9, 0.8}},
			ap: one, ap50: one, ar: 1, voc: 1, classAP: one, nDets: 2,
		},
		{
			name: "duplicate detection is a false positive after the match",
			gt:   GroundTruth{Boxes: []box.Box{g}, Labels: []int{1}},
			dt: Detections{Boxes: []box.Box{g, g}, Labels: []int{1, 1},
				Scores: []float32{0.9, 0.9}},
			ap: one, ap50: one, ar: 1, voc: 1, classAP: one, nDets: 2,
		},
		{
			name: "missed object",
			gt:   GroundTruth{Boxes: []box.Box{g, xywh(100, 100, 40, 40)}, Labels: []int{1, 1}},
			dt:   Detections{Boxes: []box.Box{g}, Labels: []int{1}, Scores: []float32{0.9}},
			// recall 1/2: thresholds 0 ... 0.5 (51 of 101) get 1/(1+eps).
			ap: 51 * one / 101, ap50: 51 * one / 101, ar: 0.5, voc: 0.5, classAP: 51 * one / 101, nDets: 1,
		},
		{
			name: "TP FP TP: VOC all-points 5/6, 101-point (51+50*2/3)/101",
			gt:   GroundTruth{Boxes: []box.Box{g, xywh(100, 100, 40, 40)}, Labels: []int{1, 1}},
			dt: Detections{Boxes: []box.Box{g, xywh(300, 300, 10, 10), xywh(100, 100, 40, 40)},
				Labels: []int{1, 1, 1}, Scores: []float32{0.9, 0.8, 0.7}},
			ap: (51*one + 50*(2/(3+eps))) / 101, ap50: (51*one + 50*(2/(3+eps))) / 101, ar: 1, voc: 5.0 / 6,
			classAP: (51*one + 50*(2/(3+eps))) / 101, nDets: 3,
		},
		{
			name: "crowd region absorbs detections inside it",
			gt: GroundTruth{Boxes: []box.Box{g, xywh(100, 100, 80, 80)}, Labels: []int{1, 1},
				Crowd: []bool{false, true}},
			dt: Detections{Boxes: []box.Box{xywh(110, 110, 20, 20), g, xywh(150, 150, 20, 20)},
				Labels: []int{1, 1, 1}, Scores: []float32{0.95, 0.9, 0.5}},
			ap: one, ap50: one, ar: 1, voc: 1, classAP: one, nDets: 3,
		},
		{
			name: "unknown label dropped, as pycocotools",
			gt:   GroundTruth{Boxes: []box.Box{g}, Labels: []int{1}},
			dt: Detections{Boxes: []box.Box{xywh(200, 200, 40, 40), g}, Labels: []int{7, 1},
				Scores: []float32{0.9, 0.8}},
			ap: one, ap50: one, ar: 1, voc: 1, classAP: one, dropped: 1, nDets: 1,
		},
		{
			name: "no detections at all",
			gt:   GroundTruth{Boxes: []box.Box{g}, Labels: []int{1}},
			ap:   0, ap50: 0, ar: 0, voc: 0, classAP: 0,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev := NewCOCO([]Category{{ID: 1, Name: "a"}, {ID: 2, Name: "b"}})
			c.gt.ImageID, c.dt.ImageID = 5, 5
			if err := ev.Add(c.gt, c.dt); err != nil {
				t.Fatal(err)
			}
			res, err := ev.Evaluate()
			if err != nil {
				t.Fatal(err)
			}
			check := func(name string, got, want float64) {
				t.Helper()
				if math.Abs(got-want) > 1e-15 {
					t.Errorf("%s = %.17g, want %.17g", name, got, want)
				}
			}
			check("AP", res.AP, c.ap)
			check("AP50", res.AP50, c.ap50)
			check("AR100", res.AR100, c.ar)
			check("VOCAP50", res.VOCAP50, c.voc)
			c1, _ := res.Class(1)
			check("class 1 AP", c1.AP, c.classAP)
			c2, _ := res.Class(2)
			if !math.IsNaN(c2.AP) || !math.IsNaN(c2.VOCAP50) || c2.RecallPerIoU[0] != -1 {
				t.Errorf("class 2 has no ground truth: AP %v VOC %v recall %v, want NaN NaN -1", c2.AP, c2.VOCAP50, c2.RecallPerIoU[0])
			}
			if res.Counts.DroppedDetections != c.dropped || c1.NumDetections != c.nDets {
				t.Errorf("dropped %d, class-1 detections %d; want %d, %d", res.Counts.DroppedDetections, c1.NumDetections, c.dropped, c.nDets)
			}
		})
	}
}

// TestCrowdOnlyClassIsAbsent: a class whose only ground truth is crowd is
// left out of the means (-1), and its detections are not false positives.
func TestCrowdOnlyClassIsAbsent(t *testing.T) {
	ev := NewCOCO(nil)
	err := ev.Add(GroundTruth{ImageID: 1, Boxes: []box.Box{xywh(0, 0, 50, 50)}, Labels: []int{3}, Crowd: []bool{true}},
		Detections{ImageID: 1, Boxes: []box.Box{xywh(5, 5, 10, 10)}, Labels: []int{3}, Scores: []float32{0.5}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := ev.Evaluate()
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range res.Stats() {
		if s != -1 {
			t.Errorf("stats[%d] = %v, want -1", i, s)
		}
	}
	if len(res.PerClass) != 1 || res.PerClass[0].Name != "3" || res.PerClass[0].NumGT != 0 {
		t.Errorf("classes %+v", res.PerClass)
	}
}

// TestAreaField: the ground truth's area field, not its box, decides the
// range; a matched detection counts whatever its own area.
func TestAreaField(t *testing.T) {
	ev := NewCOCO(nil)
	// A 50x50 box (2500: medium by box) whose area field is 900 (small).
	err := ev.Add(GroundTruth{ImageID: 1, Boxes: []box.Box{xywh(0, 0, 50, 50)}, Labels: []int{1}, Areas: []float64{900}},
		Detections{ImageID: 1, Boxes: []box.Box{xywh(0, 0, 50, 50)}, Labels: []int{1}, Scores: []float32{0.5}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := ev.Evaluate()
	if err != nil {
		t.Fatal(err)
	}
	if res.APSmall != 1/(1+eps) || res.ARSmall != 1 || res.APMedium != -1 || res.APLarge != -1 {
		t.Errorf("APs %v ARs %v APm %v APl %v; want 1/(1+eps), 1, -1, -1", res.APSmall, res.ARSmall, res.APMedium, res.APLarge)
	}
}
