package plots

import (
	"fmt"

	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/detlab/detlab/lib/train"
)

// Compare draws one loss (key, "loss" for the total, "" meaning "loss") of
// several runs on one figure, smoothed with DefaultSmoothing over the faint
// raw values, each run in its own colour and named in the legend.
func Compare(names []string, runs []*train.History, key string) (*Figure, error) {
	if len(runs) == 0 {
		return nil, fmt.Errorf("%w: no runs to compare", ErrInput)
	}
	if len(names) != len(runs) {
		return nil, fmt.Errorf("%w: %d names for %d runs", ErrInput, len(names), len(runs))
	}
	if key == "" {
		key = "loss"
	}
	p := newPlot(fmt.Sprintf("%s: %d runs (smoothed %.2g)", key, len(runs), DefaultSmoothing), "optimizer step", key)
	p.Add(plotter.NewGrid())
	dashes := [][]vg.Length{nil, {vg.Points(6), vg.Points(3)}, {vg.Points(2), vg.Points(2)}}
	for i, h := range runs {
		if h == nil || len(h.Records) == 0 {
			return nil, fmt.Errorf("%w: run %q has an empty history", ErrInput, names[i])
		}
		steps, vals := lossSeries(h, key)
		c := Palette[i%len(Palette)]
		raw, err := lineOf(steps, vals, false)
		if err != nil {
			return nil, fmt.Errorf("%w: run %q has no finite %q", ErrInput, names[i], key)
		}
		raw.Color = withAlpha(c, 60)
		raw.Width = vg.Points(0.7)
		p.Add(raw)
		sm, _ := lineOf(steps, Smooth(vals, DefaultSmoothing), false)
		sm.LineStyle = draw.LineStyle{Color: c, Width: vg.Points(2), Dashes: dashes[(i/len(Palette))%len(dashes)]}
		p.Add(sm)
		p.Legend.Add(names[i], sm)
	}
	return newFigure(p), nil
}
