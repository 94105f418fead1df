package eval

import (
	"fmt"
	"math"
	"sort"
	"strconv"

	"github.com/detlab/detlab/lib/box"
)

// GroundTruth is one image's annotated objects in detlab's types.
type GroundTruth struct {
	ImageID int64
	// Boxes are (x1, y1, x2, y2) in pixels; Labels their category ids.
	Boxes  []box.Box
	Labels []int
	// Crowd marks crowd regions (COCO iscrowd); nil means none.
	Crowd []bool
	// Areas are the objects' areas for the small/medium/large ranges (COCO
	// uses the segmentation area); nil means the box areas W*H.
	Areas []float64
}

// Detections is one image's model output in detlab's types.
type Detections struct {
	ImageID int64
	Boxes   []box.Box
	Labels  []int
	Scores  []float32
}

// Evaluator collects ground truth and detections image by image and
// evaluates them as pycocotools' COCOeval would the equivalent COCO files.
// The zero value is not usable; call NewCOCO.
type Evaluator struct {
	categories []Category
	fixedCats  bool
	known      map[int]bool
	images     map[int64]bool
	gt         COCOGroundTruth
	dets       []Detection
}

// NewCOCO returns an Evaluator for the given categories (the K axis, sorted
// by id by the evaluation). With nil categories, they are the distinct
// ground truth labels, named by their numbers, as torchvision's
// convert_to_coco_api builds them; detections of other labels are dropped.
func NewCOCO(categories []Category) *Evaluator {
	e := &Evaluator{images: map[int64]bool{}, known: map[int]bool{}}
	if categories != nil {
		e.fixedCats = true
		e.categories = append([]Category(nil), categories...)
		for _, c := range categories {
			e.known[c.ID] = true
		}
	}
	return e
}

// XYWHFromBox converts an (x1, y1, x2, y2) box to COCO's [x, y, w, h] as
// torchvision's convert_to_xywh does: the width and height are float32
// differences, then widened to float64.
func XYWHFromBox(b box.Box) XYWH {
	return XYWH{X: float64(b.X1), Y: float64(b.Y1), W: float64(b.X2 - b.X1), H: float64(b.Y2 - b.Y1)}
}

// NumImages returns the number of images added with AddGroundTruth.
func (e *Evaluator) NumImages() int { return len(e.images) }

// AddGroundTruth adds one image and its objects. Every evaluated image must
// be added this way, also one without objects. Adding an image twice, a
// label outside the categories given to NewCOCO, a NaN or infinite
// coordinate or mismatched lengths is an error.
func (e *Evaluator) AddGroundTruth(gt GroundTruth) error {
	if e.images == nil {
		return fmt.Errorf("%w: Evaluator not created with NewCOCO", ErrInput)
	}
	n := len(gt.Boxes)
	if len(gt.Labels) != n || (gt.Crowd != nil && len(gt.Crowd) != n) || (gt.Areas != nil && len(gt.Areas) != n) {
		return fmt.Errorf("%w: ground truth of image %d: %d boxes, %d labels, %d crowd flags, %d areas",
			ErrInput, gt.ImageID, n, len(gt.Labels), len(gt.Crowd), len(gt.Areas))
	}
	if e.images[gt.ImageID] {
		return fmt.Errorf("%w: ground truth of image %d added twice", ErrInput, gt.ImageID)
	}
	anns := make([]Annotation, 0, n)
	for j, b := range gt.Boxes {
		if !finiteBox(b) {
			return fmt.Errorf("%w: ground truth of image %d: box %d %v is not finite", ErrInput, gt.ImageID, j, b)
		}
		if e.fixedCats && !e.known[gt.Labels[j]] {
			return fmt.Errorf("%w: ground truth of image %d: box %d has label %d, not one of the categories", ErrInput, gt.ImageID, j, gt.Labels[j])
		}
		bb := XYWHFromBox(b)
		a := Annotation{
			ID:         int64(len(e.gt.Annotations) + len(anns) + 1),
			ImageID:    gt.ImageID,
			CategoryID: gt.Labels[j],
			BBox:       bb,
			Area:       bb.W * bb.H,
		}
		if gt.Areas != nil {
			a.Area = gt.Areas[j]
			if math.IsNaN(a.Area) {
				return fmt.Errorf("%w: ground truth of image %d: area %d is NaN", ErrInput, gt.ImageID, j)
			}
		}
		if gt.Crowd != nil {
			a.IsCrowd = gt.Crowd[j]
		}
		anns = append(anns, a)
	}
	e.images[gt.ImageID] = true
	e.gt.Images = append(e.gt.Images, Image{ID: gt.ImageID})
	e.gt.Annotations = append(e.gt.Annotations, anns...)
	if !e.fixedCats {
		for _, l := range gt.Labels {
			if !e.known[l] {
				e.known[l] = true
				e.categories = append(e.categories, Category{ID: l, Name: strconv.Itoa(l)})
			}
		}
	}
	return nil
}

// AddDetections adds one image's detections; they may come before or after
// the image's ground truth, and several calls for one image add up. A
// detection of an unknown label is dropped at evaluation (counted in
// Counts.DroppedDetections), as pycocotools does; an image never given to
// AddGroundTruth is an error from Evaluate. NaN scores or coordinates and
// mismatched lengths are errors.
func (e *Evaluator) AddDetections(d Detections) error {
	if e.images == nil {
		return fmt.Errorf("%w: Evaluator not created with NewCOCO", ErrInput)
	}
	n := len(d.Boxes)
	if len(d.Labels) != n || len(d.Scores) != n {
		return fmt.Errorf("%w: detections of image %d: %d boxes, %d labels, %d scores", ErrInput, d.ImageID, n, len(d.Labels), len(d.Scores))
	}
	for j, b := range d.Boxes {
		if !finiteBox(b) {
			return fmt.Errorf("%w: detections of image %d: box %d %v is not finite", ErrInput, d.ImageID, j, b)
		}
		s := float64(d.Scores[j])
		if math.IsNaN(s) {
			return fmt.Errorf("%w: detections of image %d: score %d is NaN", ErrInput, d.ImageID, j)
		}
	}
	for j, b := range d.Boxes {
		e.dets = append(e.dets, Detection{ImageID: d.ImageID, CategoryID: d.Labels[j], BBox: XYWHFromBox(b), Score: float64(d.Scores[j])})
	}
	return nil
}

// Add adds one image's ground truth and detections; dt.ImageID must equal
// gt.ImageID.
func (e *Evaluator) Add(gt GroundTruth, dt Detections) error {
	if dt.ImageID != gt.ImageID {
		return fmt.Errorf("%w: Add: detections of image %d with ground truth of image %d", ErrInput, dt.ImageID, gt.ImageID)
	}
	if err := e.AddGroundTruth(gt); err != nil {
		return err
	}
	return e.AddDetections(dt)
}

// COCO returns what was added as a COCO ground truth and detections, the
// inputs EvaluateCOCO takes (for instance to write them out and check with
// pycocotools). Annotation ids are 1, 2, ... in the order added.
func (e *Evaluator) COCO() (*COCOGroundTruth, []Detection) {
	gt := &COCOGroundTruth{
		Images:      append([]Image(nil), e.gt.Images...),
		Annotations: append([]Annotation(nil), e.gt.Annotations...),
		Categories:  append([]Category(nil), e.categories...),
	}
	sort.Slice(gt.Categories, func(a, b int) bool { return gt.Categories[a].ID < gt.Categories[b].ID })
	return gt, append([]Detection(nil), e.dets...)
}

// Evaluate computes the metrics over everything added so far. With no
// images it returns an error; with no detections every category with
// ground truth scores 0 (pycocotools cannot load an empty result list).
func (e *Evaluator) Evaluate() (*Result, error) {
	if len(e.images) == 0 {
		return nil, fmt.Errorf("%w: Evaluate: no images added", ErrInput)
	}
	gt, dets := e.COCO()
	ds, err := buildDataset(gt, dets)
	if err != nil {
		return nil, err
	}
	return result(ds, evaluate(ds)), nil
}

func finiteBox(b box.Box) bool {
	for _, v := range [4]float32{b.X1, b.Y1, b.X2, b.Y2} {
		f := float64(v)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return false
		}
	}
	return true
}
