package eval

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"sort"
)

// ErrInput reports input the evaluation cannot use: malformed files, NaN
// coordinates, mismatched lengths, detections for unknown images.
var ErrInput = errors.New("eval: invalid input")

// XYWH is a COCO box: top-left corner, width and height.
type XYWH struct {
	X, Y, W, H float64
}

// Category is a class: ID is the label value, Name its display name.
type Category struct {
	ID   int
	Name string
}

// Image is a COCO image entry. Width and Height are kept but, as in
// pycocotools, never used by the evaluation.
type Image struct {
	ID            int64
	Width, Height int
}

// Annotation is a COCO ground truth object. Area is the annotation's "area"
// field, which decides the area ranges (in COCO the segmentation area, often
// smaller than W*H).
type Annotation struct {
	ID         int64
	ImageID    int64
	CategoryID int
	BBox       XYWH
	Area       float64
	IsCrowd    bool
}

// Detection is one COCO result entry.
type Detection struct {
	ImageID    int64
	CategoryID int
	BBox       XYWH
	Score      float64
}

// COCOGroundTruth is a COCO ground truth file's content.
type COCOGroundTruth struct {
	Images      []Image
	Annotations []Annotation
	Categories  []Category
	// Path is the file it was read from ("" when built in memory).
	Path string
}

type jsonImage struct {
	ID     *int64 `json:"id"`
	Width  int    `json:"width"`
	Height int    `json:"height"`
}

type jsonAnn struct {
	ID         *int64     `json:"id"`
	ImageID    *int64     `json:"image_id"`
	CategoryID *int       `json:"category_id"`
	BBox       []float64  `json:"bbox"`
	Area       *float64   `json:"area"`
	IsCrowd    *flexCrowd `json:"iscrowd"`
	Score      *float64   `json:"score"`
}

type jsonCategory struct {
	ID   *int   `json:"id"`
	Name string `json:"name"`
}

// flexCrowd reads iscrowd as a number or a boolean (pycocotools applies
// int() to it).
type flexCrowd bool

func (f *flexCrowd) UnmarshalJSON(b []byte) error {
	var v bool
	if err := json.Unmarshal(b, &v); err == nil {
		*f = flexCrowd(v)
		return nil
	}
	var n float64
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("iscrowd must be a number or a boolean, got %s", b)
	}
	*f = n != 0
	return nil
}

// LoadCOCOGroundTruth reads a COCO ground truth file (images, annotations,
// categories). Missing "iscrowd" is taken as 0 and missing "area" as w*h;
// every other missing or malformed field is an error naming the file and
// the entry.
func LoadCOCOGroundTruth(path string) (*COCOGroundTruth, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("eval: ground truth: %w", err)
	}
	var top struct {
		Images      []json.RawMessage `json:"images"`
		Annotations []json.RawMessage `json:"annotations"`
		Categories  []json.RawMessage `json:"categories"`
	}
	if err := json.Unmarshal(raw, &top); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrInput, path, err)
	}
	if top.Images == nil || top.Annotations == nil || top.Categories == nil {
		return nil, fmt.Errorf("%w: %s: a COCO ground truth needs \"images\", \"annotations\" and \"categories\"", ErrInput, path)
	}
	gt := &COCOGroundTruth{Path: path}
	for i, r := range top.Images {
		var im jsonImage
		if err := strictUnmarshal(r, &im); err != nil {
			return nil, fmt.Errorf("%w: %s: images[%d]: %v", ErrInput, path, i, err)
		}
		if im.ID == nil {
			return nil, fmt.Errorf("%w: %s: images[%d]: no \"id\"", ErrInput, path, i)
		}
		gt.Images = append(gt.Images, Image{ID: *im.ID, Width: im.Width, Height: im.Height})
	}
	for i, r := range top.Categories {
		var c jsonCategory
		if err := strictUnmarshal(r, &c); err != nil {
			return nil, fmt.Errorf("%w: %s: categories[%d]: %v", ErrInput, path, i, err)
		}
		if c.ID == nil {
			return nil, fmt.Errorf("%w: %s: categories[%d]: no \"id\"", ErrInput, path, i)
		}
		gt.Categories = append(gt.Categories, Category{ID: *c.ID, Name: c.Name})
	}
	for i, r := range top.Annotations {
		var a jsonAnn
		if err := strictUnmarshal(r, &a); err != nil {
			return nil, fmt.Errorf("%w: %s: annotations[%d]: %v", ErrInput, path, i, err)
		}
		where := fmt.Sprintf("%s: annotations[%d]", path, i)
		switch {
		case a.ID == nil:
			return nil, fmt.Errorf("%w: %s: no \"id\"", ErrInput, where)
		case a.ImageID == nil:
			return nil, fmt.Errorf("%w: %s: no \"image_id\"", ErrInput, where)
		case a.CategoryID == nil:
			return nil, fmt.Errorf("%w: %s: no \"category_id\"", ErrInput, where)
		}
		bb, err := parseBBox(a.BBox)
		if err != nil {
			return nil, fmt.Errorf("%w: %s (id %d): %v", ErrInput, where, *a.ID, err)
		}
		ann := Annotation{ID: *a.ID, ImageID: *a.ImageID, CategoryID: *a.CategoryID, BBox: bb, Area: bb.W * bb.H}
		if a.Area != nil {
			ann.Area = *a.Area
		}
		if math.IsNaN(ann.Area) {
			return nil, fmt.Errorf("%w: %s (id %d): area is NaN", ErrInput, where, *a.ID)
		}
		if a.IsCrowd != nil {
			ann.IsCrowd = bool(*a.IsCrowd)
		}
		gt.Annotations = append(gt.Annotations, ann)
	}
	return gt, nil
}

// LoadCOCODetections reads a COCO results file: a list of {image_id,
// category_id, bbox, score}. Any id, area or iscrowd in it is ignored, as
// pycocotools' loadRes overwrites them. A detection for an image that is not
// in gt is an error (pycocotools asserts); one of an unknown category is kept
// here and dropped by the evaluation, as pycocotools does.
func LoadCOCODetections(path string, gt *COCOGroundTruth) ([]Detection, error) {
	if gt == nil {
		return nil, fmt.Errorf("%w: %s: nil ground truth", ErrInput, path)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("eval: detections: %w", err)
	}
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fmt.Errorf("%w: %s: a COCO results file is a JSON list: %v", ErrInput, path, err)
	}
	images := make(map[int64]bool, len(gt.Images))
	for _, im := range gt.Images {
		images[im.ID] = true
	}
	dts := make([]Detection, 0, len(list))
	for i, r := range list {
		var a jsonAnn
		if err := strictUnmarshal(r, &a); err != nil {
			return nil, fmt.Errorf("%w: %s: [%d]: %v", ErrInput, path, i, err)
		}
		where := fmt.Sprintf("%s: [%d]", path, i)
		switch {
		case a.ImageID == nil:
			return nil, fmt.Errorf("%w: %s: no \"image_id\"", ErrInput, where)
		case a.CategoryID == nil:
			return nil, fmt.Errorf("%w: %s: no \"category_id\"", ErrInput, where)
		case a.Score == nil:
			return nil, fmt.Errorf("%w: %s: no \"score\"", ErrInput, where)
		case !images[*a.ImageID]:
			return nil, fmt.Errorf("%w: %s: image_id %d is not in the ground truth %s", ErrInput, where, *a.ImageID, gt.Path)
		}
		bb, err := parseBBox(a.BBox)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrInput, where, err)
		}
		dts = append(dts, Detection{ImageID: *a.ImageID, CategoryID: *a.CategoryID, BBox: bb, Score: *a.Score})
	}
	return dts, nil
}

// strictUnmarshal decodes one entry; unknown fields are allowed (COCO files
// carry segmentation, file_name and more).
func strictUnmarshal(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	return dec.Decode(v)
}

func parseBBox(b []float64) (XYWH, error) {
	if len(b) != 4 {
		return XYWH{}, fmt.Errorf("bbox must be [x, y, w, h], got %d numbers", len(b))
	}
	for _, v := range b {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return XYWH{}, fmt.Errorf("bbox %v is not finite", b)
		}
	}
	return XYWH{X: b[0], Y: b[1], W: b[2], H: b[3]}, nil
}

// EvaluateCOCO evaluates detections against a COCO ground truth exactly as
// pycocotools' COCOeval(gt, gt.loadRes(dets), "bbox") with default Params.
func EvaluateCOCO(gt *COCOGroundTruth, dets []Detection) (*Result, error) {
	ds, err := buildDataset(gt, dets)
	if err != nil {
		return nil, err
	}
	return result(ds, evaluate(ds)), nil
}

// buildDataset lays out gt and dets as COCOeval._prepare does.
func buildDataset(gt *COCOGroundTruth, dets []Detection) (*dataset, error) {
	if gt == nil {
		return nil, fmt.Errorf("%w: nil ground truth", ErrInput)
	}
	imgSet := map[int64]bool{}
	var imgIDs []int64
	for _, im := range gt.Images {
		if !imgSet[im.ID] {
			imgSet[im.ID] = true
			imgIDs = append(imgIDs, im.ID)
		}
	}
	sort.Slice(imgIDs, func(a, b int) bool { return imgIDs[a] < imgIDs[b] })
	catName := map[int]string{}
	var catIDs []int
	for _, c := range gt.Categories {
		if _, ok := catName[c.ID]; !ok {
			catIDs = append(catIDs, c.ID)
		}
		catName[c.ID] = c.Name // createIndex: the last entry wins
	}
	sort.Ints(catIDs)
	names := make([]string, len(catIDs))
	for k, id := range catIDs {
		names[k] = catName[id]
	}
	imgIdx := make(map[int64]int, len(imgIDs))
	for i, id := range imgIDs {
		imgIdx[id] = i
	}
	catIdx := make(map[int]int, len(catIDs))
	for k, id := range catIDs {
		catIdx[id] = k
	}
	ds := newDataset(imgIDs, catIDs, names)
	I := len(imgIDs)

	// Ground truth: getAnnIds walks the images in id order, each image's
	// annotations in file order, keeps known categories, then loadAnns looks
	// each up by id (the last annotation with a duplicated id stands in).
	byID := make(map[int64]int, len(gt.Annotations))
	perImage := map[int64][]int{}
	for j, a := range gt.Annotations {
		byID[a.ID] = j
		perImage[a.ImageID] = append(perImage[a.ImageID], j)
	}
	hasGT := make([]bool, I)
	for _, img := range imgIDs {
		for _, j := range perImage[img] {
			if _, ok := catIdx[gt.Annotations[j].CategoryID]; !ok {
				continue
			}
			a := gt.Annotations[byID[gt.Annotations[j].ID]]
			ii, okI := imgIdx[a.ImageID]
			k, okK := catIdx[a.CategoryID]
			if !okI || !okK {
				continue
			}
			if math.IsNaN(a.BBox.X+a.BBox.Y+a.BBox.W+a.BBox.H) || math.IsNaN(a.Area) {
				return nil, fmt.Errorf("%w: ground truth id %d on image %d has NaN in its box or area", ErrInput, a.ID, a.ImageID)
			}
			ds.gts[k*I+ii] = append(ds.gts[k*I+ii], gtAnn{
				id: a.ID, x: a.BBox.X, y: a.BBox.Y, w: a.BBox.W, h: a.BBox.H, area: a.Area, crowd: a.IsCrowd,
			})
			hasGT[ii] = true
			ds.counts.GT++
			if a.IsCrowd {
				ds.counts.GTCrowd++
			}
		}
	}
	// Detections: loadRes sets area = w*h; unknown images are an error,
	// unknown categories are dropped.
	for j, d := range dets {
		i, ok := imgIdx[d.ImageID]
		if !ok {
			return nil, fmt.Errorf("%w: detection %d: image_id %d is not in the ground truth", ErrInput, j, d.ImageID)
		}
		if math.IsNaN(d.Score) || math.IsNaN(d.BBox.X+d.BBox.Y+d.BBox.W+d.BBox.H) {
			return nil, fmt.Errorf("%w: detection %d (image %d): NaN in score or box", ErrInput, j, d.ImageID)
		}
		k, ok := catIdx[d.CategoryID]
		if !ok {
			ds.counts.DroppedDetections++
			continue
		}
		ds.dts[k*I+i] = append(ds.dts[k*I+i], dtAnn{
			x: d.BBox.X, y: d.BBox.Y, w: d.BBox.W, h: d.BBox.H, area: d.BBox.W * d.BBox.H, score: d.Score,
		})
		ds.counts.Detections++
	}
	ds.counts.Images = I
	ds.counts.Categories = len(catIDs)
	for i := range hasGT {
		if !hasGT[i] {
			ds.counts.ImagesWithoutGT++
		}
	}
	for _, l := range ds.dts {
		ds.counts.MaxDetectionsPerImageAndCategory = max(ds.counts.MaxDetectionsPerImageAndCategory, len(l))
	}
	return ds, nil
}
