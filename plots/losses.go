package plots

import (
	"fmt"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/detlab/detlab/lib/train"
)

// DefaultSmoothing is the EMA weight of the smoothed curves, TensorBoard's
// default slider value.
const DefaultSmoothing = 0.6

// LossOptions tune Losses. The zero value is not the default: start from
// DefaultLossOptions.
type LossOptions struct {
	// Smoothing is the EMA weight in [0, 1): 0 draws the raw curves only,
	// 0.6 (the default) is TensorBoard's smoothing.
	Smoothing float64
	// Raw draws the unsmoothed values faintly under the smoothed ones
	// (default true).
	Raw bool
	// LogY puts the losses on a logarithmic axis (non-positive values are
	// left out).
	LogY bool
	// Keys selects the losses drawn; nil means all of them, the total
	// ("loss") first.
	Keys []string
	// Title replaces the default title.
	Title string
}

// DefaultLossOptions returns smoothing 0.6, raw curves shown, linear axis,
// every loss.
func DefaultLossOptions() LossOptions {
	return LossOptions{Smoothing: DefaultSmoothing, Raw: true}
}

// Smooth returns TensorBoard's smoothing of values: an exponential moving
// average last = w*last + (1-w)*v started at 0 and divided by 1 - w^n (the
// debiasing, so the first point is the first value). Non-finite values are
// passed through unchanged and do not enter the average.
func Smooth(values []float64, w float64) []float64 {
	out := make([]float64, len(values))
	last, n := 0.0, 0
	for i, v := range values {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			out[i] = v
			continue
		}
		last = last*w + (1-w)*v
		n++
		debias := 1 - math.Pow(w, float64(n))
		if debias == 0 {
			out[i] = v
			continue
		}
		out[i] = last / debias
	}
	return out
}

// Losses draws every loss of the history (the total and each torchvision
// component) against the optimizer step, raw and smoothed, with
// DefaultLossOptions.
func Losses(h *train.History) (*Figure, error) {
	return LossesWith(h, DefaultLossOptions())
}

// LossesWith is Losses with options. Non-finite losses (a skipped AMP step)
// are left out of the curves; a history with no finite loss at all is an
// error.
func LossesWith(h *train.History, o LossOptions) (*Figure, error) {
	if h == nil || len(h.Records) == 0 {
		return nil, fmt.Errorf("%w: empty training history", ErrInput)
	}
	if o.Smoothing < 0 || o.Smoothing >= 1 || math.IsNaN(o.Smoothing) {
		return nil, fmt.Errorf("%w: smoothing %v outside [0, 1)", ErrInput, o.Smoothing)
	}
	keys := o.Keys
	if keys == nil {
		keys = h.LossKeys()
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: the history records no losses", ErrInput)
	}
	title := o.Title
	if title == "" {
		title = "Training losses"
		if o.Smoothing > 0 {
			title = fmt.Sprintf("Training losses (smoothed %.2g)", o.Smoothing)
		}
	}
	p := newPlot(title, "optimizer step", "loss")
	if o.LogY {
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
		p.Y.Label.Text = "loss (log scale)"
	}
	p.Add(plotter.NewGrid())
	drawn := 0
	for i, k := range keys {
		steps, vals := lossSeries(h, k)
		c := Palette[i%len(Palette)]
		if o.Raw || o.Smoothing == 0 {
			raw, err := lineOf(steps, vals, o.LogY)
			if err == nil {
				raw.Color = c
				raw.Width = vg.Points(1)
				if o.Smoothing > 0 {
					raw.Color = withAlpha(c, 70)
					raw.Width = vg.Points(0.7)
				} else {
					p.Legend.Add(k, raw)
				}
				if k == "loss" {
					raw.Width *= 1.5
				}
				p.Add(raw)
				drawn++
			}
		}
		if o.Smoothing > 0 {
			sm, err := lineOf(steps, Smooth(vals, o.Smoothing), o.LogY)
			if err != nil {
				continue
			}
			sm.Color = c
			sm.Width = vg.Points(1.5)
			if k == "loss" {
				sm.Width = vg.Points(2.5)
			}
			p.Add(sm)
			p.Legend.Add(k, sm)
			drawn++
		}
	}
	if drawn == 0 {
		return nil, fmt.Errorf("%w: no finite values for losses %v", ErrInput, keys)
	}
	return newFigure(p), nil
}

// lossSeries returns the steps and values of one loss (NaN where a record
// lacks it).
func lossSeries(h *train.History, key string) (steps, vals []float64) {
	steps = make([]float64, len(h.Records))
	vals = make([]float64, len(h.Records))
	for i, r := range h.Records {
		steps[i] = float64(r.Step)
		v, ok := r.Losses[key]
		if !ok {
			vals[i] = math.NaN()
			continue
		}
		vals[i] = float64(v)
	}
	return steps, vals
}

// lineOf builds a line through the finite (and, with positive, > 0)
// points; ErrInput when none is left.
func lineOf(xs, ys []float64, positive bool) (*plotter.Line, error) {
	pts := make(plotter.XYs, 0, len(xs))
	for i := range xs {
		x, y := xs[i], ys[i]
		if !finite(x) || !finite(y) || (positive && y <= 0) {
			continue
		}
		pts = append(pts, plotter.XY{X: x, Y: y})
	}
	if len(pts) == 0 {
		return nil, fmt.Errorf("%w: no finite points", ErrInput)
	}
	l, err := plotter.NewLine(pts)
	if err != nil {
		return nil, fmt.Errorf("plots: %w", err)
	}
	return l, nil
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
