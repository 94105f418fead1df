package plots

import (
	"fmt"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/detlab/detlab/lib/train"
)

// LearningRate draws the learning rate of every optimizer step (a step
// schedule shows as a staircase), on a logarithmic axis when it spans
// more than a factor of 20.
func LearningRate(h *train.History) (*Figure, error) {
	return recordFigure(h, "Learning rate", "learning rate", func(r train.Record) float64 { return r.LR })
}

// LossScale draws the AMP loss scale of every step (1 without AMP) on a
// log2 axis, with the steps AMP skipped (gradient overflow) marked.
func LossScale(h *train.History) (*Figure, error) {
	f, err := recordFigure(h, "AMP loss scale", "loss scale", func(r train.Record) float64 { return r.Scale })
	if err != nil {
		return nil, err
	}
	lo, hi := math.Inf(1), 0.0
	for _, r := range h.Records {
		if finite(r.Scale) && r.Scale > 0 {
			lo, hi = math.Min(lo, r.Scale), math.Max(hi, r.Scale)
		}
	}
	if hi > 0 {
		f.Plot.Y.Scale = plot.LogScale{}
		f.Plot.Y.Tick.Marker = pow2Ticks{}
		f.Plot.Y.Min, f.Plot.Y.Max = lo/2, hi*2
		f.Plot.Y.Label.Text = "loss scale (log2 scale)"
	}
	var skipped plotter.XYs
	for _, r := range h.Records {
		if r.Skipped && finite(r.Scale) && r.Scale > 0 {
			skipped = append(skipped, plotter.XY{X: float64(r.Step), Y: r.Scale})
		}
	}
	if len(skipped) > 0 {
		s, err := plotter.NewScatter(skipped)
		if err == nil {
			s.Color = Palette[3]
			s.Radius = vg.Points(3.5)
			f.Plot.Add(s)
			f.Plot.Legend.Add(fmt.Sprintf("skipped step (%d)", len(skipped)), s)
		}
	}
	return f, nil
}

// recordFigure plots one per-record value against the step.
func recordFigure(h *train.History, title, ylabel string, get func(train.Record) float64) (*Figure, error) {
	if h == nil || len(h.Records) == 0 {
		return nil, fmt.Errorf("%w: empty training history", ErrInput)
	}
	xs := make([]float64, len(h.Records))
	ys := make([]float64, len(h.Records))
	lo, hi := 0.0, 0.0
	for i, r := range h.Records {
		xs[i], ys[i] = float64(r.Step), get(r)
		if finite(ys[i]) && ys[i] > 0 {
			if lo == 0 || ys[i] < lo {
				lo = ys[i]
			}
			if ys[i] > hi {
				hi = ys[i]
			}
		}
	}
	logY := lo > 0 && hi/lo > 20
	l, err := lineOf(xs, ys, logY)
	if err != nil {
		return nil, fmt.Errorf("%w: no finite %s in the history", ErrInput, ylabel)
	}
	p := newPlot(title, "optimizer step", ylabel)
	if logY {
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
		p.Y.Label.Text = ylabel + " (log scale)"
	}
	if lo == hi && lo > 0 {
		// A constant: give the axis some room so the line is visible.
		p.Y.Min, p.Y.Max = lo*0.5, hi*1.5
	}
	p.Add(plotter.NewGrid())
	l.Color = Palette[0]
	l.Width = vg.Points(1.5)
	l.StepStyle = plotter.PreStep
	p.Add(l)
	return newFigure(p), nil
}
