package plots

import (
	"fmt"
	"math"

	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/detlab/detlab/lib/eval"
)

// PR draws the precision-recall curve of every class at the IoU threshold
// iou (one of eval.IoUThresholds, 0.5 for AP50), COCO's 101-point
// interpolated curves, the legend naming each class with its AP at that
// threshold. Classes without ground truth are left out; precision beyond
// the largest recall reached is not drawn.
func PR(res *eval.Result, iou float64) (*Figure, error) {
	if res == nil || len(res.PerClass) == 0 {
		return nil, fmt.Errorf("%w: no per-class results", ErrInput)
	}
	p := newPlot(fmt.Sprintf("Precision-recall at IoU %.2g (COCO 101-point)", iou), "recall", "precision")
	p.Add(plotter.NewGrid())
	drawn := 0
	for _, c := range res.PerClass {
		if c.NumGT == 0 {
			continue
		}
		cur, err := res.PR(c.ID, iou)
		if err != nil {
			return nil, fmt.Errorf("plots: %w", err)
		}
		var pts plotter.XYs
		sum, n := 0.0, 0
		for j := range cur.Recall {
			pr := cur.Precision[j]
			if pr >= 0 {
				sum += pr
				n++
			}
			if pr <= 0 || !finite(pr) {
				continue
			}
			pts = append(pts, plotter.XY{X: cur.Recall[j], Y: pr})
		}
		ap := math.NaN()
		if n > 0 {
			ap = sum / float64(n)
		}
		name := c.Name
		if name == "" {
			name = fmt.Sprintf("class %d", c.ID)
		}
		col := ClassColor(c.ID)

		if len(pts) == 0 {
			// Nothing found: a flat line at 0 keeps the class in the legend.
			pts = plotter.XYs{{X: 0, Y: 0}, {X: 1, Y: 0}}
		}
		l, err := plotter.NewLine(pts)
		if err != nil {
			return nil, fmt.Errorf("plots: %w", err)
		}
		l.Color = col
		l.Width = vg.Points(2)
		l.StepStyle = plotter.PostStep
		p.Add(l)
		p.Legend.Add(fmt.Sprintf("%s AP %.3f", name, ap), l)
		drawn++
	}
	if drawn == 0 {
		return nil, fmt.Errorf("%w: no class has ground truth", ErrInput)
	}
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = 0, 1, 0, 1.05
	p.Legend.Top, p.Legend.Left = false, true
	return newFigure(p), nil
}
