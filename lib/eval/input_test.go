package eval

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/detlab/detlab/lib/box"
)

const goodGT = `{"images": [{"id": 1, "width": 100, "height": 100}],
"annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20], "area": 400, "iscrowd": 0}],
"categories": [{"id": 1, "name": "cat"}]}`

func writeTemp(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadGroundTruthErrors(t *testing.T) {
	cases := []struct {
		name, content, want string
	}{
		{"truncated", `{"images": [`, "bad.json"},
		{"not an object", `[1, 2]`, "bad.json"},
		{"no categories", `{"images": [], "annotations": []}`, `"categories"`},
		{"image without id", `{"images": [{"width": 3}], "annotations": [], "categories": []}`, "images[0]: no \"id\""},
		{"bbox of 3", `{"images": [{"id": 1}], "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3], "area": 1, "iscrowd": 0}], "categories": [{"id": 1}]}`, "annotations[0] (id 1): bbox must be"},
		{"bbox of strings", `{"images": [{"id": 1}], "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": ["a", 2, 3, 4]}], "categories": [{"id": 1}]}`, "annotations[0]"},
		{"annotation without image", `{"images": [{"id": 1}], "annotations": [{"id": 1, "category_id": 1, "bbox": [1, 2, 3, 4]}], "categories": [{"id": 1}]}`, "no \"image_id\""},
		{"string image id", `{"images": [{"id": "a"}], "annotations": [], "categories": []}`, "images[0]"},
		{"bad iscrowd", `{"images": [{"id": 1}], "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4], "iscrowd": "yes"}], "categories": [{"id": 1}]}`, "iscrowd"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := writeTemp(t, "bad.json", c.content)
			_, err := LoadCOCOGroundTruth(p)
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "bad.json") {
				t.Errorf("error %q: want ErrInput naming bad.json and %q", err, c.want)
			}
		})
	}
	if _, err := LoadCOCOGroundTruth(filepath.Join(t.TempDir(), "missing.json")); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestLoadGroundTruthDefaults(t *testing.T) {
	p := writeTemp(t, "gt.json", `{"images": [{"id": 1}], "annotations": [
	{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 20]},
	{"id": 2, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 20], "area": 5, "iscrowd": true}], "categories": [{"id": 1, "name": "x"}]}`)
	gt, err := LoadCOCOGroundTruth(p)
	if err != nil {
		t.Fatal(err)
	}
	a, b := gt.Annotations[0], gt.Annotations[1]
	if a.Area != 200 || a.IsCrowd || b.Area != 5 || !b.IsCrowd {
		t.Errorf("annotations %+v %+v: want area w*h and iscrowd 0 by default", a, b)
	}
}

func TestLoadDetectionsErrors(t *testing.T) {
	gt, err := LoadCOCOGroundTruth(writeTemp(t, "gt.json", goodGT))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, content, want string
	}{
		{"malformed", `[{"image_id": 1,`, "dt.json"},
		{"not a list", `{"image_id": 1}`, "JSON list"},
		{"unknown image (pycocotools asserts)", `[{"image_id": 9, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 0.5}]`, "image_id 9 is not in the ground truth"},
		{"no score", `[{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1]}]`, "[0]: no \"score\""},
		{"short bbox", `[{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1], "score": 0.5}]`, "[0]: bbox must be"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := LoadCOCODetections(writeTemp(t, "dt.json", c.content), gt)
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "dt.json") {
				t.Errorf("error %q: want ErrInput naming dt.json and %q", err, c.want)
			}
		})
	}
	// An unknown category is dropped, as pycocotools' getAnnIds does.
	dts, err := LoadCOCODetections(writeTemp(t, "dt.json",
		`[{"image_id": 1, "category_id": 5, "bbox": [10, 10, 20, 20], "score": 0.9},
		  {"image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20], "score": 0.5, "id": 77, "area": 3}]`), gt)
	if err != nil {
		t.Fatal(err)
	}
	res, err := EvaluateCOCO(gt, dts)
	if err != nil {
		t.Fatal(err)
	}
	if res.Counts.DroppedDetections != 1 || res.Counts.Detections != 1 || res.AP != 1/(1+eps) {
		t.Errorf("dropped %d, kept %d, AP %v; want 1, 1, 1/(1+eps)", res.Counts.DroppedDetections, res.Counts.Detections, res.AP)
	}
	if _, err := EvaluateCOCO(gt, []Detection{{ImageID: 4, CategoryID: 1, BBox: XYWH{0, 0, 1, 1}, Score: 1}}); err == nil {
		t.Error("EvaluateCOCO: detection on an unknown image: no error")
	}
	if _, err := EvaluateCOCO(gt, []Detection{{ImageID: 1, CategoryID: 1, BBox: XYWH{0, 0, 1, 1}, Score: math.NaN()}}); err == nil {
		t.Error("EvaluateCOCO: NaN score: no error")
	}
	if _, err := EvaluateCOCO(nil, nil); err == nil {
		t.Error("EvaluateCOCO(nil): no error")
	}
}

func TestEvaluatorErrors(t *testing.T) {
	b := []box.Box{xywh(0, 0, 10, 10)}
	nan := float32(math.NaN())
	cases := []struct {
		name string
		run  func(ev *Evaluator) error
		want string
	}{
		{"gt lengths", func(ev *Evaluator) error {
			return ev.AddGroundTruth(GroundTruth{ImageID: 1, Boxes: b, Labels: []int{1, 2}})
		}, "1 boxes, 2 labels"},
		{"gt crowd length", func(ev *Evaluator) error {
			return ev.AddGroundTruth(GroundTruth{ImageID: 1, Boxes: b, Labels: []int{1}, Crowd: []bool{}})
		}, "crowd"},
		{"gt NaN box", func(ev *Evaluator) error {
			return ev.AddGroundTruth(GroundTruth{ImageID: 1, Boxes: []box.Box{{X1: nan}}, Labels: []int{1}})
		}, "box 0"},
		{"gt NaN area", func(ev *Evaluator) error {
			return ev.AddGroundTruth(GroundTruth{ImageID: 1, Boxes: b, Labels: []int{1}, Areas: []float64{math.NaN()}})
		}, "area 0 is NaN"},
		{"gt unknown label", func(ev *Evaluator) error {
			return ev.AddGroundTruth(GroundTruth{ImageID: 1, Boxes: b, Labels: []int{9}})
		}, "label 9"},
		{"image twice", func(ev *Evaluator) error {
			if err := ev.AddGroundTruth(GroundTruth{ImageID: 1}); err != nil {
				return nil
			}
			return ev.AddGroundTruth(GroundTruth{ImageID: 1})
		}, "added twice"},
		{"dt lengths", func(ev *Evaluator) error {
			return ev.AddDetections(Detections{ImageID: 1, Boxes: b, Labels: []int{1}})
		}, "0 scores"},
		{"dt NaN score", func(ev *Evaluator) error {
			return ev.AddDetections(Detections{ImageID: 1, Boxes: b, Labels: []int{1}, Scores: []float32{nan}})
		}, "score 0 is NaN"},
		{"dt Inf box", func(ev *Evaluator) error {
			return ev.AddDetections(Detections{ImageID: 1, Boxes: []box.Box{{X2: float32(math.Inf(1))}}, Labels: []int{1}, Scores: []float32{1}})
		}, "not finite"},
		{"Add with two image ids", func(ev *Evaluator) error {
			return ev.Add(GroundTruth{ImageID: 1}, Detections{ImageID: 2})
		}, "image 2 with ground truth of image 1"},
		{"no images", func(ev *Evaluator) error {
			_, err := ev.Evaluate()
			return err
		}, "no images"},
		{"detections for an image without ground truth", func(ev *Evaluator) error {
			if err := ev.AddGroundTruth(GroundTruth{ImageID: 1}); err != nil {
				return nil
			}
			if err := ev.AddDetections(Detections{ImageID: 2, Boxes: b, Labels: []int{1}, Scores: []float32{1}}); err != nil {
				return nil
			}
			_, err := ev.Evaluate()
			return err
		}, "image_id 2 is not in the ground truth"},
		{"zero Evaluator", func(*Evaluator) error {
			return (&Evaluator{}).AddGroundTruth(GroundTruth{})
		}, "NewCOCO"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.run(NewCOCO([]Category{{ID: 1, Name: "a"}}))
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "eval: ") {
				t.Errorf("error %q: want an eval: ErrInput containing %q", err, c.want)
			}
		})
	}
}

// TestEvaluatorMatchesCOCOPath: the same input through the Evaluator and
// through EvaluateCOCO on its COCO() view gives identical arrays.
func TestEvaluatorMatchesCOCOPath(t *testing.T) {
	ev := syntheticEvaluator(40, 7)
	a, err := ev.Evaluate()
	if err != nil {
		t.Fatal(err)
	}
	gt, dts := ev.COCO()
	b, err := EvaluateCOCO(gt, dts)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Precision) != len(b.Precision) {
		t.Fatal("shapes differ")
	}
	for i := range a.Precision {
		if a.Precision[i] != b.Precision[i] {
			t.Fatalf("precision[%d] %v != %v", i, a.Precision[i], b.Precision[i])
		}
	}
	if a.String() != b.String() {
		t.Error("summaries differ")
	}
	if a.AP <= 0 || a.AP >= 1 || a.AR100 <= 0 {
		t.Errorf("synthetic set: AP %v AR100 %v, want inside (0, 1)", a.AP, a.AR100)
	}
}
