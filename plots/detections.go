package plots

import (
	"fmt"
	"image"

	"gonum.org/v1/plot/vg"

	"github.com/detlab/detlab/lib/box"
	"github.com/detlab/detlab/lib/fasterrcnn"
)

// DetectionOptions tune Detections. The zero value works: every detection
// drawn, classes named "class k", no ground truth.
type DetectionOptions struct {
	// Classes names the labels (Classes[k] for label k, as
	// data.Dataset.Classes returns them, background first).
	Classes []string
	// GT and GTLabels are the ground truth, drawn dashed in the class
	// colours with a "GT" tag; GTLabels may be nil.
	GT       []box.Box
	GTLabels []int
	// MinScore hides detections scoring below it.
	MinScore float64
	// LineWidth is the box outline width in points (default 2).
	LineWidth float64
}

// Detections draws det's boxes on a copy of img (solid, in the colour of
// their class, tagged with the class name and score) and the ground truth
// (dashed, same colours). Images smaller than MinDrawSize are scaled up
// first. Boxes partly outside the image are clipped; boxes entirely outside
// are not drawn. A NaN coordinate or mismatched lengths are errors.
func Detections(img image.Image, det fasterrcnn.Detections, o DetectionOptions) (*Image, error) {
	if len(det.Scores) != len(det.Boxes) || len(det.Labels) != len(det.Boxes) {
		return nil, fmt.Errorf("%w: %d boxes, %d scores, %d labels", ErrInput, len(det.Boxes), len(det.Scores), len(det.Labels))
	}
	if o.GTLabels != nil && len(o.GTLabels) != len(o.GT) {
		return nil, fmt.Errorf("%w: %d ground-truth boxes, %d labels", ErrInput, len(o.GT), len(o.GTLabels))
	}
	for i, b := range det.Boxes {
		if b.HasNaN() {
			return nil, fmt.Errorf("%w: detection %d has a NaN coordinate %v", ErrInput, i, b)
		}
	}
	for i, b := range o.GT {
		if b.HasNaN() {
			return nil, fmt.Errorf("%w: ground-truth box %d has a NaN coordinate %v", ErrInput, i, b)
		}
	}
	p, err := newPainter(img, vg.Points(11))
	if err != nil {
		return nil, err
	}
	lw := vg.Points(2)
	if o.LineWidth > 0 {
		lw = vg.Points(o.LineWidth)
	}
	name := func(k int) string {
		if k >= 0 && k < len(o.Classes) {
			return o.Classes[k]
		}
		return fmt.Sprintf("class %d", k)
	}
	for i, b := range o.GT {
		cb, ok := p.clip(b)
		if !ok {
			continue
		}
		k := 0
		if o.GTLabels != nil {
			k = o.GTLabels[i]
		}
		p.rect(cb, ClassColor(k), lw, []vg.Length{vg.Points(5), vg.Points(3)})
		p.label("GT "+name(k), float64(cb.X1), float64(cb.Y2)+p.labelHeight(), ClassColor(k))
	}
	// Lowest scores first, so the best detections are drawn on top.
	order := make([]int, len(det.Boxes))
	for i := range order {
		order[i] = i
	}
	for i := 1; i < len(order); i++ {
		for j := i; j > 0 && det.Scores[order[j]] < det.Scores[order[j-1]]; j-- {
			order[j], order[j-1] = order[j-1], order[j]
		}
	}
	for _, i := range order {
		if float64(det.Scores[i]) < o.MinScore {
			continue
		}
		cb, ok := p.clip(det.Boxes[i])
		if !ok {
			continue
		}
		c := ClassColor(det.Labels[i])
		p.rect(cb, c, lw, nil)
		p.label(fmt.Sprintf("%s %.2f", name(det.Labels[i]), det.Scores[i]), float64(cb.X1), float64(cb.Y1), c)
	}
	return p.image(), nil
}
