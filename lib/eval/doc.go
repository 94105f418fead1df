// Package eval computes COCO-style detection metrics whose numbers equal
// pycocotools' COCOeval (iouType "bbox", default Params) for the same ground
// truth and detections, plus a Pascal VOC AP50.
//
// Two ways in. From detlab's own types, one image at a time:
//
//	ev := eval.NewCOCO([]eval.Category{{ID: 1, Name: "RBC"}, {ID: 2, Name: "WBC"}})
//	ev.AddGroundTruth(eval.GroundTruth{ImageID: 7, Boxes: gtBoxes, Labels: gtLabels})
//	ev.AddDetections(eval.Detections{ImageID: 7, Boxes: boxes, Labels: labels, Scores: scores})
//	res, err := ev.Evaluate()
//	fmt.Println(res)            // pycocotools' 12-line summary
//	res.PerClass[0].AP          // detectron2's per-class AP
//
// or from COCO JSON files:
//
//	gt, err := eval.LoadCOCOGroundTruth("instances_val.json")
//	dt, err := eval.LoadCOCODetections("results.json", gt)
//	res, err := eval.EvaluateCOCO(gt, dt)
//
// # The algorithm
//
// It is pycocotools' (cocodataset/cocoapi PythonAPI 2.0, cocoeval.py and
// bbIou in maskApi.c), step for step, in float64:
//
//   - Images are the ground truth's image ids, ascending; categories the
//     ground truth's category ids, ascending (the K axis of Precision).
//   - Per image and category, detections are sorted by descending score with
//     a stable sort (numpy's argsort(kind='mergesort') on -score) and cut to
//     the last MaxDets value (100) per image AND category.
//   - IoU of [x, y, w, h] boxes as bbIou: iw = min(x+w) - max(x), likewise
//     ih, zero when either is <= 0; union = dw*dh + gw*gh - inter, or dw*dh
//     for a crowd ground truth. Areas are w*h of the boxes; no +1.
//   - Per area range, a ground truth is ignored when it is crowd or its area
//     field lies outside [lo, hi] (both ends inclusive); ground truths are
//     ordered non-ignored first, stably. Greedy matching per IoU threshold t
//     starts from best = min(t, 1-1e-10); a matched ground truth is skipped
//     unless crowd; once matched to a non-ignored one the walk stops at the
//     first ignored one; equal IoU lets the later ground truth win.
//   - A detection matched to an ignored ground truth is ignored; an unmatched
//     detection whose own area w*h is outside the range is ignored.
//   - Accumulation per category, area range and maxDets concatenates the
//     images in ascending id order, sorts stably by descending score, takes
//     running TP/FP counts, recall tp/npig, precision tp/((tp+fp)+eps) with
//     eps = 2^-52, makes precision non-increasing from the right and samples
//     it at the 101 recall thresholds with searchsorted(side='left');
//     categories without a non-ignored ground truth stay -1.
//   - Summaries are means over the entries > -1 (numpy's pairwise summation
//     order), -1 when there is none.
//
// Per-class AP is detectron2's: the mean of Precision[:, :, k, all, 100] over
// the entries > -1, NaN for a category without ground truth.
//
// # VOC AP50
//
// ClassResult.VOCAP50 is the VOC2010+ ("all points") average precision: the
// exact area under the precision envelope (precision made non-increasing
// from the right) of the raw precision-recall curve at IoU 0.5, area "all",
// 100 detections per image and category. The matching is COCO's above (crowd
// ground truth is ignored like VOC's "difficult"), so it differs from AP50
// only in the interpolation: no 101-point sampling, and precision is
// tp/(tp+fp) without eps. It is not py-faster-rcnn's voc_eval: that matches
// each detection to its highest-IoU ground truth only (a taken one makes it a
// false positive), needs IoU strictly above 0.5 and adds 1 to widths.
// Result.VOCAP50 is the mean over categories with ground truth.
//
// # Differences from pycocotools on bad input
//
// pycocotools raises on a detection for an image that is not in the ground
// truth; so does this package (an error naming the image). A detection whose
// category is not in the ground truth's categories is dropped silently by
// pycocotools; here too, counted in Counts.DroppedDetections. pycocotools
// raises IndexError on an empty detection list; here every category with
// ground truth scores 0. A ground truth without "iscrowd" makes pycocotools
// raise KeyError; the loader takes it as 0. A ground truth without "area"
// makes pycocotools raise KeyError; the loader takes w*h. Everything else
// pycocotools accepts is accepted with its meaning, including its quirks:
// a ground truth with id 0 can never be a true positive, and duplicate ground
// truth ids make the last annotation with that id stand in for all of them.
package eval
