package data

import (
	"fmt"

	"github.com/detlab/detlab/lib/box"
)

// checker applies the validation rules and the policy, recording into a
// Report.
type checker struct {
	rep    *Report
	policy Policy
}

// problem records p; under Fail for a policy kind it returns p as an error.
func (c *checker) problem(p *Problem) error {
	if c.policy == Fail && p.Kind.sentinel() != nil {
		return p
	}
	c.rep.add(p)
	return nil
}

// checkBox validates one box in an image of size w x h: it returns the box
// to keep (possibly clipped), whether to keep it, and an error under Fail.
func (c *checker) checkBox(file, entry string, b box.Box, w, h int) (box.Box, bool, error) {
	W, H := float32(w), float32(h)
	skip := func(k Kind, detail string) (box.Box, bool, error) {
		return b, false, c.problem(&Problem{Kind: k, File: file, Entry: entry, Detail: detail, Action: "skipped box"})
	}
	if !finite(b) {
		return skip(InvalidBox, fmt.Sprintf("non-finite coordinates %v", b))
	}
	if b.X1 == b.X2 || b.Y1 == b.Y2 {
		return skip(ZeroArea, b.String())
	}
	if b.X2 < b.X1 || b.Y2 < b.Y1 {
		if b.X1 >= 0 && b.Y1 >= 0 && b.X2 > 0 && b.Y2 > 0 && b.X1+b.X2 <= W && b.Y1+b.Y2 <= H {
			return skip(LooksXYWH, fmt.Sprintf("%v has x2 < x1 or y2 < y1 but x1+x2 <= %d and y1+y2 <= %d", b, w, h))
		}
		return skip(InvalidBox, fmt.Sprintf("%v has x2 < x1 or y2 < y1", b))
	}
	if b.X1 < 0 || b.Y1 < 0 || b.X2 > W || b.Y2 > H {
		cb := box.Box{X1: clamp(b.X1, W), Y1: clamp(b.Y1, H), X2: clamp(b.X2, W), Y2: clamp(b.Y2, H)}
		if cb.X2 <= cb.X1 || cb.Y2 <= cb.Y1 {
			return skip(Outside, fmt.Sprintf("%v in a %dx%d image", b, w, h))
		}
		c.rep.add(&Problem{Kind: Clipped, File: file, Entry: entry, Detail: fmt.Sprintf("%v to %v in a %dx%d image", b, cb, w, h), Action: "clipped"})
		return cb, true, nil
	}
	return b, true, nil
}

func clamp(v, hi float32) float32 {
	if v < 0 {
		return 0
	}
	if v > hi {
		return hi
	}
	return v
}

// record is one image's parsed annotation before validation.
type record struct {
	id, path, file string // file: the annotation file, for messages
	w, h           int    // annotated size, 0 if unknown
	objs           []object
}

type object struct {
	entry     string
	name      string // class name, or "" when label is set directly
	label     int    // used when name == ""; -1 unknown
	b         box.Box
	difficult bool
	crowd     bool
}

// entry is one validated image of a file-backed dataset.
type entry struct {
	id, path  string
	w, h      int
	boxes     []box.Box
	labels    []int
	difficult []bool
	crowd     []bool
}

// build validates records into entries: image header check, class mapping,
// box checks, DropEmpty.
func build(recs []record, classes *classTable, opts Options, rep *Report) ([]entry, error) {
	c := &checker{rep: rep, policy: opts.OnError}
	var out []entry
	for _, r := range recs {
		w, h := r.w, r.h
		if !opts.NoImageCheck || w <= 0 || h <= 0 {
			iw, ih, err := imageSize(r.path)
			if err != nil {
				if perr := c.problem(imageProblem(r.path, r.file, err)); perr != nil {
					return nil, perr
				}
				continue
			}
			if r.w > 0 && r.h > 0 && (iw != r.w || ih != r.h) {
				c.rep.add(&Problem{Kind: SizeMismatch, File: r.file, Detail: fmt.Sprintf("annotated %dx%d, image %dx%d", r.w, r.h, iw, ih), Action: "used the image's size"})
			}
			w, h = iw, ih
		}
		e := entry{id: r.id, path: r.path, w: w, h: h}
		for _, o := range r.objs {
			label := o.label
			if o.name != "" {
				var ok bool
				if label, ok = classes.index[o.name]; !ok {
					label = -1
				}
			}
			if label < 1 || label >= len(classes.names) {
				what := fmt.Sprintf("class %q is not one of %v", o.name, classes.names[1:])
				if o.name == "" {
					what = fmt.Sprintf("class id %d is out of range for %d classes", o.label, len(classes.names)-1)
				}
				if err := c.problem(&Problem{Kind: UnknownClass, File: r.file, Entry: o.entry, Detail: what, Action: "skipped box"}); err != nil {
					return nil, err
				}
				continue
			}
			b, keep, err := c.checkBox(r.file, o.entry, o.b, w, h)
			if err != nil {
				return nil, err
			}
			if !keep {
				continue
			}
			e.boxes = append(e.boxes, b)
			e.labels = append(e.labels, label)
			e.difficult = append(e.difficult, o.difficult)
			e.crowd = append(e.crowd, o.crowd)
		}
		if opts.DropEmpty && len(e.boxes) == 0 {
			continue
		}
		rep.kept(1, len(e.boxes))
		out = append(out, e)
	}
	return out, nil
}

// sample reads entry e's image into a Sample.
func (e *entry) sample(file string) (Sample, error) {
	img, err := DecodeImage(e.path)
	if err != nil {
		return Sample{}, imageProblem(e.path, file, err)
	}
	b := img.Bounds()
	s := Sample{ID: e.id, Path: e.path, Image: img, Width: b.Dx(), Height: b.Dy(),
		Boxes: e.boxes, Labels: e.labels, Difficult: e.difficult, Crowd: e.crowd}
	s = s.clone()
	if s.Width != e.w || s.Height != e.h {
		// The file changed since it was opened, or NoImageCheck was set and
		// the annotation was wrong: clip to the real size.
		s = clipSample(s)
	}
	return s, nil
}

func boxOf(v [4]float32) box.Box { return box.Box{X1: v[0], Y1: v[1], X2: v[2], Y2: v[3]} }
