package plots

import (
	"fmt"
	"image"
	"image/color"

	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/detlab/detlab/lib/anchor"
	"github.com/detlab/detlab/lib/box"
)

// Anchors draws the cell anchors of cfg centred at one location, as
// outlines in pixel units (equal axes), one colour per aspect ratio and a
// label "size s, ratio r" at each anchor's top-right corner.
func Anchors(cfg anchor.Config) (*Figure, error) {
	cell, err := anchor.CellAnchors(cfg)
	if err != nil {
		return nil, fmt.Errorf("plots: %w", err)
	}
	p := newPlot(fmt.Sprintf("Anchors at one location: %d shapes", len(cell)), "x (pixels)", "y (pixels)")
	p.Add(plotter.NewGrid())
	ext := 0.0
	var lx, ly []float64
	var ltxt []string
	for i, a := range cell {
		ri, si := i/len(cfg.Sizes), i%len(cfg.Sizes)
		x1, y1, x2, y2 := float64(a.X1), float64(a.Y1), float64(a.X2), float64(a.Y2)
		// y up in the plot: flip so tall anchors are drawn tall.
		pts := plotter.XYs{{X: x1, Y: -y1}, {X: x2, Y: -y1}, {X: x2, Y: -y2}, {X: x1, Y: -y2}, {X: x1, Y: -y1}}
		l, err := plotter.NewLine(pts)
		if err != nil {
			return nil, fmt.Errorf("plots: %w", err)
		}
		l.Color = Palette[ri%len(Palette)]
		l.Width = vg.Points(1.5)
		p.Add(l)
		if si == 0 {
			p.Legend.Add(fmt.Sprintf("ratio h/w %g", cfg.AspectRatios[ri]), l)
		}
		if x2-x1 < 0.25*maxWidth(cell) && y2-y1 < 0.25*maxWidth(cell) {
			continue // too small to label legibly; the legend and title say the sizes
		}
		lx = append(lx, x2)
		ly = append(ly, -y1)
		ltxt = append(ltxt, fmt.Sprintf("%g:%g", cfg.Sizes[si], cfg.AspectRatios[ri]))
		for _, v := range []float64{-x1, x2, -y1, y2} {
			ext = max(ext, v)
		}
	}
	labels, err := plotter.NewLabels(plotter.XYLabels{XYs: xys(lx, ly), Labels: ltxt})
	if err == nil {
		for i := range labels.TextStyle {
			labels.TextStyle[i].Font.Size = vg.Points(7)
			labels.TextStyle[i].XAlign = draw.XRight
			labels.TextStyle[i].YAlign = draw.YTop
		}
		p.Add(labels)
	}
	ext *= 1.3
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = -ext, ext, -ext, ext
	p.Legend.Left = true
	f := newFigure(p)
	f.Width, f.Height = 14*vg.Centimeter, 14*vg.Centimeter
	p.Title.Text = fmt.Sprintf("Anchors at one location: sizes %s\n(labels size:ratio)", joinSizes(cfg.Sizes))
	return f, nil
}

func maxWidth(cell []box.Box) float64 {
	m := 0.0
	for _, a := range cell {
		m = max(m, float64(a.X2-a.X1), float64(a.Y2-a.Y1))
	}
	return m
}

func joinSizes(v []float64) string {
	s := ""
	for i, x := range v {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%g", x)
	}
	return s
}

func xys(x, y []float64) plotter.XYs {
	out := make(plotter.XYs, len(x))
	for i := range x {
		out[i] = plotter.XY{X: x[i], Y: y[i]}
	}
	return out
}

// AnchorsOverImage draws the anchors of cfg laid over img as the RPN lays
// them (a grid of stride pixels from the top-left corner, the image padded
// to a multiple of 32), at every every-th grid location in each direction
// (every <= 0 picks a spacing that shows about 3 locations per side),
// each location's anchors in the colour of their aspect ratio, translucent,
// with the grid points of all locations marked. img is taken as the
// resized image the model sees.
func AnchorsOverImage(img image.Image, cfg anchor.Config, stride, every int) (*Image, error) {
	if stride <= 0 {
		return nil, fmt.Errorf("%w: stride %d", ErrInput, stride)
	}
	cell, err := anchor.CellAnchors(cfg)
	if err != nil {
		return nil, fmt.Errorf("plots: %w", err)
	}
	p, err := newPainter(img, vg.Points(9))
	if err != nil {
		return nil, err
	}
	H, W := img.Bounds().Dy(), img.Bounds().Dx()
	ph, pw := (H+31)/32*32, (W+31)/32*32
	fh, fw := (ph+stride-1)/stride, (pw+stride-1)/stride
	sy, sx := ph/fh, pw/fw
	if every <= 0 {
		every = max(1, (max(fh, fw)+2)/3)
	}
	// Grid points.
	for y := 0; y < fh; y++ {
		for x := 0; x < fw; x++ {
			cx, cy := float64(x*sx), float64(y*sy)
			if cx > float64(W) || cy > float64(H) {
				continue
			}
			p.dot(cx, cy, color.NRGBA{40, 40, 40, 140})
		}
	}
	for y := every / 2; y < fh; y += every {
		for x := every / 2; x < fw; x += every {
			if x*sx > W || y*sy > H {
				continue
			}
			for i, a := range cell {
				ri := i / len(cfg.Sizes)
				b := box.Box{X1: a.X1 + float32(x*sx), Y1: a.Y1 + float32(y*sy), X2: a.X2 + float32(x*sx), Y2: a.Y2 + float32(y*sy)}
				p.rectUnclipped(b, withAlpha(Palette[ri%len(Palette)], 110), vg.Points(1))
			}
			p.dot(float64(x*sx), float64(y*sy), color.NRGBA{255, 0, 0, 255})
		}
	}
	for ri, r := range cfg.AspectRatios {
		p.label(fmt.Sprintf("ratio %g", r), 2, 2+float64(ri+1)*p.labelHeight(), Palette[ri%len(Palette)])
	}
	p.label(fmt.Sprintf("stride %d, sizes %v", stride, cfg.Sizes), 2, float64(H)-2, color.NRGBA{0, 0, 0, 200})
	return p.image(), nil
}

// AnchorCoverage draws the histogram of each ground-truth box's best anchor
// IoU with the RPN's thresholds (0.7 positive, 0.3 negative) as vertical
// lines, the legend giving the fraction of boxes at or above each.
func AnchorCoverage(c *anchor.Coverage) (*Figure, error) {
	if c == nil || c.Len() == 0 {
		return nil, fmt.Errorf("%w: no boxes in the coverage", ErrInput)
	}
	vals := make(plotter.Values, 0, c.Len())
	for _, v := range c.BestIoU {
		if finite(v) {
			vals = append(vals, v)
		}
	}
	if len(vals) == 0 {
		return nil, fmt.Errorf("%w: no finite IoU in the coverage", ErrInput)
	}
	h, err := plotter.NewHist(vals, 20)
	if err != nil {
		return nil, fmt.Errorf("plots: %w", err)
	}
	h.FillColor = withAlpha(Palette[0], 180)
	h.LineStyle.Color = Palette[0]
	p := newPlot(fmt.Sprintf("Best anchor IoU of %d boxes\n%v, stride %d", c.Len(), c.Config, c.Stride), "best IoU with any anchor", "boxes")
	p.Add(plotter.NewGrid(), h)
	p.X.Min, p.X.Max = 0, 1
	top := 0.0
	for _, b := range h.Bins {
		top = max(top, b.Weight)
	}
	for i, t := range []struct {
		v    float64
		name string
	}{{0.5, "≥ 0.5"}, {anchor.PositiveIoU, "≥ 0.7 (positive)"}, {anchor.NegativeIoU, "≥ 0.3 (below: negative)"}} {
		l, _ := plotter.NewLine(plotter.XYs{{X: t.v, Y: 0}, {X: t.v, Y: top * 1.05}})
		l.Width = vg.Points(2)
		l.Color = []color.Color{Palette[1], Palette[2], Palette[3]}[i]
		if i == 0 {
			l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		}
		p.Add(l)
		p.Legend.Add(fmt.Sprintf("%s: %.1f%%", t.name, 100*c.Fraction(t.v)), l)
	}
	p.Legend.Left = true
	p.Y.Max = top * 1.25
	return newFigure(p), nil
}
