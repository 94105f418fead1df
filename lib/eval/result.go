package eval

import (
	"fmt"
	"math"
	"strings"
)

// Counts describes what was evaluated.
type Counts struct {
	Images                           int // images (the ground truth's image list)
	ImagesWithoutGT                  int // images with no ground truth of a known category
	Categories                       int // categories (the K axis)
	GT                               int // ground truths evaluated, crowd included
	GTCrowd                          int // crowd ground truths among them
	Detections                       int // detections evaluated (before the maxDets cut)
	DroppedDetections                int // detections of an unknown category, dropped as pycocotools does
	MaxDetectionsPerImageAndCategory int // the largest number of detections of one class on one image
}

// PRCurve is a precision-recall curve of one category at one IoU threshold.
// For the 101-point curves Recall holds the recall thresholds and Precision
// COCOeval's interpolated precision at each (0 past the largest recall
// reached); for the raw curve (ClassResult.RawPR50) there is one point per
// detection that is not ignored, in descending score order, with Scores.
type PRCurve struct {
	IoU       float64
	Recall    []float64
	Precision []float64
	Scores    []float64
}

// ClassResult holds one category's metrics at area "all", 100 detections.
// AP values are NaN for a category without ground truth (detectron2's
// convention); they are plain fractions, not percentages.
type ClassResult struct {
	ID   int
	Name string
	// AP is the mean of Precision[:, :, k, all, 100] over entries > -1.
	AP, AP50, AP75 float64
	// APPerIoU and RecallPerIoU hold the mean precision and the recall at
	// each IoU threshold (NaN / -1 when absent).
	APPerIoU     []float64
	RecallPerIoU []float64
	// AR100 is the mean of RecallPerIoU over entries > -1 (NaN when absent).
	AR100 float64
	// VOCAP50 is the VOC2010+ all-points AP at IoU 0.5 (see the package doc).
	VOCAP50 float64
	// NumGT counts ground truths that are not crowd; NumDetections the
	// detections kept (at most 100 per image).
	NumGT, NumDetections int
	// Curves holds the 101-point curve at each IoU threshold.
	Curves []PRCurve
	// RawPR50 is the uninterpolated curve at IoU 0.5.
	RawPR50 PRCurve
}

// Result holds COCOeval's numbers. The twelve summary fields are
// COCOeval.stats in summarize() order; -1 means nothing to average.
type Result struct {
	AP, AP50, AP75, APSmall, APMedium, APLarge   float64
	AR1, AR10, AR100, ARSmall, ARMedium, ARLarge float64
	// VOCAP50 is the mean of the per-class VOCAP50 over categories with
	// ground truth (-1 when there is none).
	VOCAP50 float64
	// PerClass is in CategoryIDs order.
	PerClass    []ClassResult
	CategoryIDs []int

	IoUThresholds    []float64
	RecallThresholds []float64
	AreaRanges       []AreaRange
	MaxDets          []int
	// Precision is COCOeval.eval['precision'] flattened row-major with shape
	// PrecisionShape = [T, R, K, A, M]; Recall is eval['recall'], [T, K, A, M];
	// Scores is eval['scores'], shaped as Precision.
	Precision, Recall, Scores []float64
	PrecisionShape            [5]int
	RecallShape               [4]int
	Counts                    Counts
}

// PrecisionAt returns eval['precision'][t, r, k, a, m].
func (r *Result) PrecisionAt(t, ri, k, a, m int) float64 {
	s := r.PrecisionShape
	return r.Precision[(((t*s[1]+ri)*s[2]+k)*s[3]+a)*s[4]+m]
}

// RecallAt returns eval['recall'][t, k, a, m].
func (r *Result) RecallAt(t, k, a, m int) float64 {
	s := r.RecallShape
	return r.Recall[((t*s[1]+k)*s[2]+a)*s[3]+m]
}

// Stats returns the twelve summary numbers in COCOeval.stats order.
func (r *Result) Stats() []float64 {
	return []float64{r.AP, r.AP50, r.AP75, r.APSmall, r.APMedium, r.APLarge,
		r.AR1, r.AR10, r.AR100, r.ARSmall, r.ARMedium, r.ARLarge}
}

// Class returns the result of the category with the given id.
func (r *Result) Class(id int) (ClassResult, bool) {
	for _, c := range r.PerClass {
		if c.ID == id {
			return c, true
		}
	}
	return ClassResult{}, false
}

// PR returns the 101-point precision-recall curve of category id at the IoU
// threshold iou (one of IoUThresholds, compared within 1e-9), area "all",
// 100 detections.
func (r *Result) PR(id int, iou float64) (PRCurve, error) {
	c, ok := r.Class(id)
	if !ok {
		return PRCurve{}, fmt.Errorf("eval: PR: category %d is not evaluated (categories %v)", id, r.CategoryIDs)
	}
	for _, cv := range c.Curves {
		if math.Abs(cv.IoU-iou) < 1e-9 {
			return cv, nil
		}
	}
	return PRCurve{}, fmt.Errorf("eval: PR: IoU %g is not a threshold (%v)", iou, r.IoUThresholds)
}

// String prints COCOeval.summarize()'s twelve lines.
func (r *Result) String() string {
	var b strings.Builder
	iouAll := fmt.Sprintf("%0.2f:%0.2f", r.IoUThresholds[0], r.IoUThresholds[len(r.IoUThresholds)-1])
	line := func(ap bool, iou, area string, maxDets int, v float64) {
		title, typ := "Average Precision", "(AP)"
		if !ap {
			title, typ = "Average Recall", "(AR)"
		}
		fmt.Fprintf(&b, " %-18s %s @[ IoU=%-9s | area=%6s | maxDets=%3d ] = %0.3f\n", title, typ, iou, area, maxDets, v)
	}
	line(true, iouAll, "all", 100, r.AP)
	line(true, "0.50", "all", 100, r.AP50)
	line(true, "0.75", "all", 100, r.AP75)
	line(true, iouAll, "small", 100, r.APSmall)
	line(true, iouAll, "medium", 100, r.APMedium)
	line(true, iouAll, "large", 100, r.APLarge)
	line(false, iouAll, "all", 1, r.AR1)
	line(false, iouAll, "all", 10, r.AR10)
	line(false, iouAll, "all", 100, r.AR100)
	line(false, iouAll, "small", 100, r.ARSmall)
	line(false, iouAll, "medium", 100, r.ARMedium)
	line(false, iouAll, "large", 100, r.ARLarge)
	return b.String()
}

// ClassTable prints one line per category: id, name, AP, AP50, AP75, VOC
// AP50, ground truths and detections; "-" for an absent category.
func (r *Result) ClassTable() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%4s  %-16s %7s %7s %7s %7s %6s %6s\n", "id", "name", "AP", "AP50", "AP75", "VOC50", "gt", "dets")
	f := func(v float64) string {
		if math.IsNaN(v) {
			return "-"
		}
		return fmt.Sprintf("%.4f", v)
	}
	for _, c := range r.PerClass {
		fmt.Fprintf(&b, "%4d  %-16s %7s %7s %7s %7s %6d %6d\n", c.ID, c.Name, f(c.AP), f(c.AP50), f(c.AP75), f(c.VOCAP50), c.NumGT, c.NumDetections)
	}
	return b.String()
}

// result turns an evaluation into a Result (COCOeval.summarize and
// detectron2's per-class AP).
func result(ds *dataset, ev *evaluation) *Result {
	res := &Result{
		CategoryIDs:      append([]int(nil), ds.catIDs...),
		IoUThresholds:    IoUThresholds(),
		RecallThresholds: RecallThresholds(),
		AreaRanges:       AreaRanges(),
		MaxDets:          MaxDets(),
		Precision:        ev.precision,
		Recall:           ev.recall,
		Scores:           ev.scores,
		PrecisionShape:   [5]int{ev.T, ev.R, ev.K, ev.A, ev.M},
		RecallShape:      [4]int{ev.T, ev.K, ev.A, ev.M},
		Counts:           ds.counts,
	}
	mLast := ev.M - 1
	// summarizeP: mean of precision[t in ts, :, :, a, m] over entries > -1,
	// in C order (t, r, k).
	summarizeP := func(ts []int, a, m int) float64 {
		var vals []float64
		for _, t := range ts {
			for r := 0; r < ev.R; r++ {
				for k := 0; k < ev.K; k++ {
					if v := ev.precision[ev.pIndex(t, r, k, a, m)]; v > -1 {
						vals = append(vals, v)
					}
				}
			}
		}
		return meanOr(vals, -1)
	}
	summarizeR := func(a, m int) float64 {
		var vals []float64
		for t := 0; t < ev.T; t++ {
			for k := 0; k < ev.K; k++ {
				if v := ev.recall[ev.rIndex(t, k, a, m)]; v > -1 {
					vals = append(vals, v)
				}
			}
		}
		return meanOr(vals, -1)
	}
	allT := make([]int, ev.T)
	for t := range allT {
		allT[t] = t
	}
	t50, t75 := thresholdIndex(res.IoUThresholds, 0.5), thresholdIndex(res.IoUThresholds, 0.75)
	res.AP = summarizeP(allT, 0, mLast)
	res.AP50 = summarizeP([]int{t50}, 0, mLast)
	res.AP75 = summarizeP([]int{t75}, 0, mLast)
	res.APSmall = summarizeP(allT, 1, mLast)
	res.APMedium = summarizeP(allT, 2, mLast)
	res.APLarge = summarizeP(allT, 3, mLast)
	res.AR1 = summarizeR(0, 0)
	res.AR10 = summarizeR(0, 1)
	res.AR100 = summarizeR(0, mLast)
	res.ARSmall = summarizeR(1, mLast)
	res.ARMedium = summarizeR(2, mLast)
	res.ARLarge = summarizeR(3, mLast)

	var vocs []float64
	for k := 0; k < ev.K; k++ {
		c := ClassResult{ID: ds.catIDs[k], Name: ds.catNames[k], NumDetections: ev.numDets[k]}
		for i := range ds.imgIDs {
			for _, g := range ds.gts[k*len(ds.imgIDs)+i] {
				if !g.crowd {
					c.NumGT++
				}
			}
		}
		var all, recalls []float64
		for t := 0; t < ev.T; t++ {
			var vals []float64
			cv := PRCurve{IoU: res.IoUThresholds[t], Recall: res.RecallThresholds, Precision: make([]float64, ev.R)}
			for r := 0; r < ev.R; r++ {
				v := ev.precision[ev.pIndex(t, r, k, 0, mLast)]
				cv.Precision[r] = v
				if v > -1 {
					vals = append(vals, v)
				}
			}
			all = append(all, vals...)
			c.APPerIoU = append(c.APPerIoU, meanOr(vals, math.NaN()))
			c.Curves = append(c.Curves, cv)
			rv := ev.recall[ev.rIndex(t, k, 0, mLast)]
			c.RecallPerIoU = append(c.RecallPerIoU, rv)
			if rv > -1 {
				recalls = append(recalls, rv)
			}
		}
		c.AP = meanOr(all, math.NaN())
		c.AP50 = c.APPerIoU[t50]
		c.AP75 = c.APPerIoU[t75]
		c.AR100 = meanOr(recalls, math.NaN())
		raw := ev.raw[k]
		c.RawPR50 = PRCurve{IoU: res.IoUThresholds[0], Recall: raw.recall, Precision: raw.precision, Scores: raw.scores}
		if c.AP50 == c.AP50 { // category has ground truth (not NaN)
			c.VOCAP50 = vocAP(raw)
			vocs = append(vocs, c.VOCAP50)
		} else {
			c.VOCAP50 = math.NaN()
		}
		res.PerClass = append(res.PerClass, c)
	}
	res.VOCAP50 = meanOr(vocs, -1)
	return res
}

// thresholdIndex returns the index of v in thr (exact match, as
// np.where(iouThr == p.iouThrs)).
func thresholdIndex(thr []float64, v float64) int {
	for i, x := range thr {
		if x == v {
			return i
		}
	}
	return 0
}

// meanOr returns numpy's mean of vals (pairwise summation), or empty when
// there are no values.
func meanOr(vals []float64, empty float64) float64 {
	if len(vals) == 0 {
		return empty
	}
	return pairwiseSum(vals) / float64(len(vals))
}

// pairwiseSum is numpy's pairwise_sum for float64 (blocks of 128, unrolled
// by 8), so means agree with np.mean to the last bit on contiguous arrays.
func pairwiseSum(a []float64) float64 {
	n := len(a)
	switch {
	case n < 8:
		res := 0.0
		for _, v := range a {
			res += v
		}
		return res
	case n <= 128:
		var r [8]float64
		copy(r[:], a[:8])
		i := 8
		for ; i < n-n%8; i += 8 {
			for j := 0; j < 8; j++ {
				r[j] += a[i+j]
			}
		}
		res := ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
		for ; i < n; i++ {
			res += a[i]
		}
		return res
	default:
		n2 := n / 2
		n2 -= n2 % 8
		return pairwiseSum(a[:n2]) + pairwiseSum(a[n2:])
	}
}
