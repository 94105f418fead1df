package eval

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/detlab/detlab/internal/golden"
)

// fixtureTol is the README's tolerance for every number in the fixtures:
// pycocotools computes in float64; only the summation order of means may
// differ, and we follow numpy's pairwise order, so most values are exact.
const fixtureTol = 1e-12

// fixtureDir is $DETLAB_COCO_EVAL, else ../shared/coco_eval.
func fixtureDir(t *testing.T) string {
	t.Helper()
	d := os.Getenv("DETLAB_COCO_EVAL")
	if d == "" {
		d = filepath.Join(golden.SharedDir(), "coco_eval")
	}
	if _, err := os.Stat(filepath.Join(d, "manifest.json")); err != nil {
		t.Skipf("COCO eval fixtures not found in %s (pycocotools references live in ../shared/coco_eval): %v", d, err)
	}
	return d
}

type manifest struct {
	Params struct {
		IoUThrs []float64   `json:"iouThrs"`
		RecThrs []float64   `json:"recThrs"`
		MaxDets []int       `json:"maxDets"`
		AreaRng [][]float64 `json:"areaRng"`
		Labels  []string    `json:"areaRngLbl"`
	} `json:"params"`
	StatsNames []string `json:"stats_names"`
	Cases      []struct {
		Name  string    `json:"name"`
		Stats []float64 `json:"stats"`
	} `json:"cases"`
}

type expected struct {
	Counts struct {
		Images          int `json:"images"`
		ImagesWithoutGT int `json:"images_without_gt"`
		Categories      int `json:"categories"`
		GT              int `json:"gt"`
		GTCrowd         int `json:"gt_crowd"`
		Detections      int `json:"detections"`
		MaxPerImgCat    int `json:"max_detections_per_image_and_category"`
	} `json:"counts"`
	Stats          []float64 `json:"stats"`
	PrecisionShape []int     `json:"precision_shape"`
	RecallShape    []int     `json:"recall_shape"`
	CategoryIDs    []int     `json:"category_ids"`
	PerCategory    []struct {
		CategoryID   int        `json:"category_id"`
		Name         string     `json:"name"`
		AP           *float64   `json:"AP"`
		AP50         *float64   `json:"AP50"`
		APPerIoU     []*float64 `json:"AP_per_iou"`
		RecallPerIoU []*float64 `json:"recall_per_iou"`
	} `json:"per_category"`
	Recall    [][][][]float64 `json:"recall"`
	Precision [][][]float64   `json:"precision_area_all_maxdets_100"`
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// checker counts mismatches and reports the first few.
type checker struct {
	t    *testing.T
	bad  int
	maxE float64
}

// num compares got with want; a null want (an absent category) must be NaN
// for per-class means and -1 for recall entries (nullIsNaN false).
func (c *checker) num(name string, got float64, want *float64) { c.cmp(name, got, want, false) }

func (c *checker) numNaN(name string, got float64, want *float64) { c.cmp(name, got, want, true) }

func (c *checker) cmp(name string, got float64, want *float64, nullIsNaN bool) {
	c.t.Helper()
	if want == nil {
		if nullIsNaN && !math.IsNaN(got) || !nullIsNaN && got != -1 {
			c.fail("%s = %v, want null (NaN for a mean, -1 for a recall)", name, got)
		}
		return
	}
	w := *want
	if w == -1 {
		if got != -1 {
			c.fail("%s = %v, want -1", name, got)
		}
		return
	}
	d := math.Abs(got - w)
	if !(d <= fixtureTol) {
		c.fail("%s = %.17g, want %.17g (diff %.3g)", name, got, w, d)
	}
	if d > c.maxE {
		c.maxE = d
	}
}

func (c *checker) fail(format string, args ...any) {
	c.t.Helper()
	c.bad++
	if c.bad <= 10 {
		c.t.Errorf(format, args...)
	}
}

func TestParamsMatchManifest(t *testing.T) {
	dir := fixtureDir(t)
	var m manifest
	readJSON(t, filepath.Join(dir, "manifest.json"), &m)
	iou, rec := IoUThresholds(), RecallThresholds()
	if len(iou) != len(m.Params.IoUThrs) || len(rec) != len(m.Params.RecThrs) {
		t.Fatalf("thresholds %d/%d, manifest %d/%d", len(iou), len(rec), len(m.Params.IoUThrs), len(m.Params.RecThrs))
	}
	for i := range iou {
		if iou[i] != m.Params.IoUThrs[i] {
			t.Errorf("iouThrs[%d] = %.17g, want %.17g", i, iou[i], m.Params.IoUThrs[i])
		}
	}
	for i := range rec {
		if rec[i] != m.Params.RecThrs[i] {
			t.Errorf("recThrs[%d] = %.17g, want %.17g", i, rec[i], m.Params.RecThrs[i])
		}
	}
	if fmt.Sprint(MaxDets()) != fmt.Sprint(m.Params.MaxDets) {
		t.Errorf("maxDets %v, want %v", MaxDets(), m.Params.MaxDets)
	}
	for a, r := range AreaRanges() {
		if r.Lo != m.Params.AreaRng[a][0] || r.Hi != m.Params.AreaRng[a][1] || r.Label != m.Params.Labels[a] {
			t.Errorf("area range %d = %+v, want %v %v", a, r, m.Params.Labels[a], m.Params.AreaRng[a])
		}
	}
}

// TestFixtures runs every case listed in manifest.json through the loaders
// and EvaluateCOCO and compares every number in NAME.expected.json.
func TestFixtures(t *testing.T) {
	dir := fixtureDir(t)
	var m manifest
	readJSON(t, filepath.Join(dir, "manifest.json"), &m)
	if len(m.Cases) == 0 {
		t.Fatal("manifest.json lists no cases")
	}
	for _, cs := range m.Cases {
		t.Run(cs.Name, func(t *testing.T) {
			var want expected
			readJSON(t, filepath.Join(dir, cs.Name+".expected.json"), &want)
			gt, err := LoadCOCOGroundTruth(filepath.Join(dir, cs.Name+".gt.json"))
			if err != nil {
				t.Fatal(err)
			}
			dts, err := LoadCOCODetections(filepath.Join(dir, cs.Name+".dt.json"), gt)
			if err != nil {
				t.Fatal(err)
			}
			res, err := EvaluateCOCO(gt, dts)
			if err != nil {
				t.Fatal(err)
			}
			c := &checker{t: t}
			got := res.Stats()
			if len(want.Stats) != len(got) {
				t.Fatalf("%d stats, want %d", len(got), len(want.Stats))
			}
			for i := range got {
				c.num("stats "+m.StatsNames[i], got[i], &want.Stats[i])
			}
			for i := range want.Stats {
				if i < len(cs.Stats) && cs.Stats[i] != want.Stats[i] {
					t.Errorf("manifest and expected.json disagree on stats[%d]", i)
				}
			}
			if fmt.Sprint(res.PrecisionShape[:]) != fmt.Sprint(want.PrecisionShape) {
				t.Errorf("precision shape %v, want %v", res.PrecisionShape, want.PrecisionShape)
			}
			if fmt.Sprint(res.RecallShape[:]) != fmt.Sprint(want.RecallShape) {
				t.Errorf("recall shape %v, want %v", res.RecallShape, want.RecallShape)
			}
			if fmt.Sprint(res.CategoryIDs) != fmt.Sprint(want.CategoryIDs) {
				t.Fatalf("category ids %v, want %v", res.CategoryIDs, want.CategoryIDs)
			}
			// Counts: GT and detections may be counted as evaluated or as
			// listed in the files (they differ only when entries of unknown
			// images or categories are left out).
			wc := want.Counts
			gc := res.Counts
			if gc.Images != wc.Images || gc.ImagesWithoutGT != wc.ImagesWithoutGT || gc.Categories != wc.Categories ||
				(gc.GT != wc.GT && len(gt.Annotations) != wc.GT) || gc.GTCrowd != wc.GTCrowd ||
				(gc.Detections != wc.Detections && len(dts) != wc.Detections) ||
				gc.MaxDetectionsPerImageAndCategory != wc.MaxPerImgCat {
				t.Errorf("counts %+v, want %+v", gc, wc)
			}
			if len(want.PerCategory) != len(res.PerClass) {
				t.Fatalf("%d classes, want %d", len(res.PerClass), len(want.PerCategory))
			}
			for k, wp := range want.PerCategory {
				gp := res.PerClass[k]
				if gp.ID != wp.CategoryID || gp.Name != wp.Name {
					t.Errorf("class %d = %d %q, want %d %q", k, gp.ID, gp.Name, wp.CategoryID, wp.Name)
				}
				c.numNaN(fmt.Sprintf("class %d AP", gp.ID), gp.AP, wp.AP)
				c.numNaN(fmt.Sprintf("class %d AP50", gp.ID), gp.AP50, wp.AP50)
				for ti := range wp.APPerIoU {
					c.numNaN(fmt.Sprintf("class %d AP@iou[%d]", gp.ID, ti), gp.APPerIoU[ti], wp.APPerIoU[ti])
					c.num(fmt.Sprintf("class %d recall@iou[%d]", gp.ID, ti), gp.RecallPerIoU[ti], wp.RecallPerIoU[ti])
				}
			}
			for ti := range want.Recall {
				for k := range want.Recall[ti] {
					for a := range want.Recall[ti][k] {
						for mi := range want.Recall[ti][k][a] {
							c.num(fmt.Sprintf("recall[%d,%d,%d,%d]", ti, k, a, mi), res.RecallAt(ti, k, a, mi), &want.Recall[ti][k][a][mi])
						}
					}
				}
			}
			mLast := res.PrecisionShape[4] - 1
			for k := range want.Precision {
				for ti := range want.Precision[k] {
					for r := range want.Precision[k][ti] {
						c.num(fmt.Sprintf("precision[%d,%d,%d,all,100]", ti, r, k), res.PrecisionAt(ti, r, k, 0, mLast), &want.Precision[k][ti][r])
					}
				}
			}
			if c.bad > 0 {
				t.Errorf("%d numbers differ", c.bad)
			}
			t.Logf("%s: AP %.4f AP50 %.4f AR100 %.4f; largest difference from pycocotools %.3g", cs.Name, res.AP, res.AP50, res.AR100, c.maxE)
		})
	}
}
