package data

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// COCO is a dataset in COCO's instances JSON format with an image folder.
type COCO struct {
	file    string
	classes *classTable
	catIDs  []int // label -> category id (0 for background)
	entries []entry
	report  *Report
}

type cocoJSON struct {
	Images []struct {
		ID       *int64 `json:"id"`
		FileName string `json:"file_name"`
		Width    int    `json:"width"`
		Height   int    `json:"height"`
	} `json:"images"`
	Annotations []struct {
		ID         int64     `json:"id"`
		ImageID    *int64    `json:"image_id"`
		CategoryID *int      `json:"category_id"`
		BBox       []float64 `json:"bbox"`
		IsCrowd    int       `json:"iscrowd"`
	} `json:"annotations"`
	Categories []struct {
		ID   *int   `json:"id"`
		Name string `json:"name"`
	} `json:"categories"`
}

// OpenCOCO reads a COCO instances file (images, annotations, categories)
// whose file_name entries are relative to imageDir. Category ids become
// contiguous labels 1..K in increasing id order (or in the order of
// Options.Classes, matched by name); CategoryID maps them back. bbox
// [x,y,w,h] becomes (x, y, x+w, y+h); iscrowd goes to Sample.Crowd. Images
// without annotations are kept unless Options.DropEmpty is set.
func OpenCOCO(annotationFile, imageDir string, opts ...Options) (*COCO, error) {
	o, err := firstOptions(opts)
	if err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(annotationFile)
	if err != nil {
		return nil, fmt.Errorf("data: coco: %w", err)
	}
	var js cocoJSON
	if err := json.Unmarshal(raw, &js); err != nil {
		return nil, &Problem{Kind: Malformed, File: annotationFile, Detail: "JSON: " + err.Error(), Err: err}
	}
	if len(js.Images) == 0 {
		return nil, fmt.Errorf("data: coco: %s lists no images", annotationFile)
	}
	if len(js.Categories) == 0 {
		return nil, fmt.Errorf("data: coco: %s lists no categories", annotationFile)
	}
	rep := newReport("coco "+filepath.Base(annotationFile), o.MaxProblems)
	c := &checker{rep: rep, policy: o.OnError}

	// Categories.
	type cat struct {
		id   int
		name string
	}
	var cats []cat
	seenID := map[int]bool{}
	for i, ct := range js.Categories {
		if ct.ID == nil || ct.Name == "" || seenID[*ct.ID] {
			return nil, &Problem{Kind: Malformed, File: annotationFile, Entry: fmt.Sprintf("categories[%d]", i), Detail: "missing or duplicate id, or empty name"}
		}
		seenID[*ct.ID] = true
		cats = append(cats, cat{*ct.ID, ct.Name})
	}
	sort.Slice(cats, func(i, j int) bool { return cats[i].id < cats[j].id })
	var classes *classTable
	if o.Classes != nil {
		classes, err = newClassTable(o.Classes)
	} else {
		names := make([]string, len(cats))
		for i, ct := range cats {
			names[i] = ct.name
		}
		classes, err = newClassTable(names)
	}
	if err != nil {
		return nil, fmt.Errorf("data: coco %s: %w", annotationFile, err)
	}
	catLabel := map[int]int{} // category id -> label, -1 when not among Classes
	catIDs := make([]int, len(classes.names))
	for _, ct := range cats {
		l, ok := classes.index[ct.name]
		if !ok {
			catLabel[ct.id] = -1
			continue
		}
		catLabel[ct.id] = l
		catIDs[l] = ct.id
	}

	// Images, in file order.
	recs := make([]record, 0, len(js.Images))
	byID := map[int64]int{}
	for i, im := range js.Images {
		if im.ID == nil || im.FileName == "" {
			if err := c.problem(&Problem{Kind: Malformed, File: annotationFile, Entry: fmt.Sprintf("images[%d]", i), Detail: "missing id or file_name", Action: "skipped image"}); err != nil {
				return nil, err
			}
			continue
		}
		if _, dup := byID[*im.ID]; dup {
			if err := c.problem(&Problem{Kind: Malformed, File: annotationFile, Entry: fmt.Sprintf("images[%d]", i), Detail: fmt.Sprintf("duplicate image id %d", *im.ID), Action: "skipped image"}); err != nil {
				return nil, err
			}
			continue
		}
		byID[*im.ID] = len(recs)
		recs = append(recs, record{id: im.FileName, path: filepath.Join(imageDir, im.FileName), file: annotationFile, w: im.Width, h: im.Height})
	}
	for i, a := range js.Annotations {
		entry := fmt.Sprintf("annotations[%d] (id %d)", i, a.ID)
		bad := func(k Kind, detail string) error {
			return c.problem(&Problem{Kind: k, File: annotationFile, Entry: entry, Detail: detail, Action: "skipped box"})
		}
		if a.ImageID == nil || a.CategoryID == nil || len(a.BBox) != 4 {
			if err := bad(Malformed, fmt.Sprintf("need image_id, category_id and a 4-number bbox, got bbox %v", a.BBox)); err != nil {
				return nil, err
			}
			continue
		}
		ri, ok := byID[*a.ImageID]
		if !ok {
			if err := bad(Malformed, fmt.Sprintf("image_id %d is not in images", *a.ImageID)); err != nil {
				return nil, err
			}
			continue
		}
		l, ok := catLabel[*a.CategoryID]
		if !ok || l < 0 {
			detail := fmt.Sprintf("category_id %d is not in categories", *a.CategoryID)
			if ok {
				detail = fmt.Sprintf("category_id %d is not one of %v", *a.CategoryID, classes.names[1:])
			}
			if err := bad(UnknownClass, detail); err != nil {
				return nil, err
			}
			continue
		}
		x, y, w, h := a.BBox[0], a.BBox[1], a.BBox[2], a.BBox[3]
		if w < 0 || h < 0 {
			if err := bad(InvalidBox, fmt.Sprintf("bbox %v has a negative width or height", a.BBox)); err != nil {
				return nil, err
			}
			continue
		}
		recs[ri].objs = append(recs[ri].objs, object{entry: entry, label: l, crowd: a.IsCrowd != 0,
			b: boxOf([4]float32{float32(x), float32(y), float32(x + w), float32(y + h)})})
	}
	entries, err := build(recs, classes, o, rep)
	if err != nil {
		return nil, err
	}
	return &COCO{file: annotationFile, classes: classes, catIDs: catIDs, entries: entries, report: rep}, nil
}

// Len is the number of images.
func (d *COCO) Len() int { return len(d.entries) }

// Classes returns the class names, Background first.
func (d *COCO) Classes() []string { return append([]string(nil), d.classes.names...) }

// NumClasses is len(Classes()).
func (d *COCO) NumClasses() int { return len(d.classes.names) }

// CategoryID returns the COCO category id of a label (0 for background or
// an out-of-range label), for writing results in COCO's format.
func (d *COCO) CategoryID(label int) int {
	if label < 0 || label >= len(d.catIDs) {
		return 0
	}
	return d.catIDs[label]
}

// Report is what validation found when the file was opened.
func (d *COCO) Report() *Report { return d.report }

// Sample decodes image i with its annotations.
func (d *COCO) Sample(i int) (Sample, error) {
	if i < 0 || i >= len(d.entries) {
		return Sample{}, fmt.Errorf("data: coco index %d out of range [0,%d)", i, len(d.entries))
	}
	return d.entries[i].sample(d.file)
}
