package plots

import (
	"fmt"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/detlab/detlab/lib/train"
)

// GradNorms draws each parameter's gradient norm (train.GradNorms) as a
// horizontal bar on a logarithmic axis, the parameters top to bottom in
// model order. Zero norms are drawn at the axis minimum; non-finite norms
// (an overflow) are drawn in red at the maximum and named in the title.
// The figure grows 0.32 cm per parameter.
func GradNorms(norms []train.GradNorm) (*Figure, error) {
	if len(norms) == 0 {
		return nil, fmt.Errorf("%w: no gradient norms", ErrInput)
	}
	lo, hi := math.Inf(1), 0.0
	for _, n := range norms {
		if finite(n.Norm) && n.Norm > 0 {
			lo, hi = math.Min(lo, n.Norm), math.Max(hi, n.Norm)
		}
	}
	if math.IsInf(lo, 1) {
		lo, hi = 1e-6, 1
	}
	floor := math.Pow(10, math.Floor(math.Log10(lo*0.999)))
	ceil := math.Pow(10, math.Ceil(math.Log10(hi*1.0001)))
	k := len(norms)
	ok := make(plotter.XYs, 0, k)
	bad := make(plotter.XYs, 0)
	var badNames []string
	names := make([]string, k)
	for i, n := range norms {
		y := float64(k - 1 - i) // first parameter at the top
		names[k-1-i] = n.Name
		switch {
		case !finite(n.Norm):
			bad = append(bad, plotter.XY{X: ceil, Y: y})
			badNames = append(badNames, n.Name)
		case n.Norm <= 0:
			names[k-1-i] = n.Name + " (0)"
		default:
			ok = append(ok, plotter.XY{X: n.Norm, Y: y})
		}
	}
	title := "Gradient norm per parameter"
	if len(badNames) > 0 {
		title += fmt.Sprintf("\nnon-finite from %s (%d)", badNames[0], len(badNames))
	}
	p := newPlot(title, "L2 norm of the gradient (log scale)", "")
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	p.X.Min, p.X.Max = floor, ceil
	p.Add(plotter.NewGrid())
	for si, set := range []plotter.XYs{ok, bad} {
		for _, pt := range set {
			l, _ := plotter.NewLine(plotter.XYs{{X: floor, Y: pt.Y}, pt})
			l.Width = vg.Points(5)
			l.Color = Palette[0]
			if si == 1 {
				l.Color = Palette[3]
			}
			p.Add(l)
		}
	}
	p.NominalY(names...)
	p.Y.Tick.Label.Font.Size = vg.Points(7)
	f := newFigure(p)
	f.Height = max(DefaultHeight, vg.Length(k)*0.32*vg.Centimeter+3*vg.Centimeter)
	return f, nil
}
