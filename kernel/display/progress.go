package display

import (
	"fmt"
	"html"
	"math"
	"sort"
	"strings"
	"sync"
	"time"

	"gonum.org/v1/plot/vg"

	"github.com/detlab/detlab/lib/train"
	"github.com/detlab/detlab/plots"
)

// ProgressBar is a train.Reporter for notebooks: a bar updated in place
// (update_display_data) with the step, rate, ETA and latest losses, and a
// small loss plot refreshed every PlotEvery steps. Outside a notebook (no
// sink installed) it hands every report to Fallback, a terminal reporter by
// default, so the same cell runs as a plain Go program.
//
//	bar := display.NewProgress("shapes")
//	tr := train.New(train.Detector(model), train.Config{LR: 0.01, Reporter: bar})
//	hist, err := tr.Fit(ctx, ds, 2)
//
// A ProgressBar may be reused across Fit calls: each call's first report
// starts a new bar and plot; the loss curve keeps every step seen.
type ProgressBar struct {
	// Title heads the bar ("training" when empty).
	Title string
	// PlotEvery refreshes the loss plot every so many steps (default 10;
	// negative: no plot). The last step of a Fit always refreshes it.
	PlotEvery int
	// MinInterval limits how often the bar is redrawn (default 250ms); the
	// last step of a Fit is always drawn.
	MinInterval time.Duration
	// PlotWidth and PlotHeight size the loss plot (default 5 x 2.5 inches).
	PlotWidth, PlotHeight vg.Length
	// Fallback receives the reports outside a notebook (default
	// train.NewTerminal()).
	Fallback train.Reporter

	mu       sync.Mutex
	barID    string
	plotID   string
	plotDone bool
	last     time.Time
	lastP    train.Progress
	hist     train.History
}

// NewProgress returns a ProgressBar with the given title and the defaults.
func NewProgress(title string) *ProgressBar {
	return &ProgressBar{Title: title}
}

// Report implements train.Reporter.
func (b *ProgressBar) Report(p train.Progress) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.record(p)
	if !IsNotebook() {
		if b.Fallback == nil {
			b.Fallback = train.NewTerminal()
		}
		b.Fallback.Report(p)
		return
	}
	first := p.Done <= 1 || b.barID == ""
	last := p.Done >= p.Total
	if first {
		b.barID, b.plotID, b.plotDone = NewID(), NewID(), false
		b.last = time.Time{}
	}
	interval := b.MinInterval
	if interval == 0 {
		interval = 250 * time.Millisecond
	}
	now := time.Now()
	if first || last || now.Sub(b.last) >= interval {
		d := Data{MIME: map[string]any{"text/html": b.html(p), "text/plain": train.FormatProgress(p)}, DisplayID: b.barID}
		if first {
			Send(d)
		} else {
			SendUpdate(d)
		}
		b.last = now
	}
	every := b.PlotEvery
	if every == 0 {
		every = 10
	}
	if every > 0 && len(b.hist.Records) > 1 && (last || p.Done%every == 0) {
		b.sendPlot()
	}
}

// record appends the step to the history the plot draws.
func (b *ProgressBar) record(p train.Progress) {
	b.lastP = p
	losses := make(map[string]float32, len(p.Losses))
	for k, v := range p.Losses {
		losses[k] = v
	}
	b.hist.Records = append(b.hist.Records, train.Record{Epoch: p.Epoch, Step: p.Step, Losses: losses,
		LR: p.LR, Scale: p.Scale, Skipped: p.Skipped})
}

// History returns the steps reported so far (epoch, step, losses, learning
// rate, loss scale, skipped), across Fit calls.
func (b *ProgressBar) History() *train.History {
	b.mu.Lock()
	defer b.mu.Unlock()
	h := &train.History{Records: append([]train.Record(nil), b.hist.Records...)}
	return h
}

// sendPlot draws the loss plot under the bar, replacing the previous one.
func (b *ProgressBar) sendPlot() {
	p, err := b.plot()
	if err != nil {
		return
	}
	w, h := b.PlotWidth, b.PlotHeight
	if w == 0 {
		w = 5 * vg.Inch
	}
	if h == 0 {
		h = 2.5 * vg.Inch
	}
	d, err := PlotBundle(p.Plot, w, h)
	if err != nil {
		return
	}
	d.DisplayID = b.plotID
	if b.plotDone {
		SendUpdate(d)
		return
	}
	Send(d)
	b.plotDone = true
}

// Plot returns the loss curves recorded so far (plots.Losses of History,
// titled with the bar's title).
func (b *ProgressBar) Plot() (*plots.Figure, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.plot()
}

func (b *ProgressBar) plot() (*plots.Figure, error) {
	if len(b.hist.Records) == 0 {
		return nil, fmt.Errorf("display: no progress reported yet")
	}
	o := plots.DefaultLossOptions()
	o.Title = b.title() + ": losses"
	f, err := plots.LossesWith(&b.hist, o)
	if err != nil {
		return nil, fmt.Errorf("display: loss plot: %w", err)
	}
	return f, nil
}

func (b *ProgressBar) title() string {
	if b.Title == "" {
		return "training"
	}
	return b.Title
}

// HTML renders the bar for the latest report, as the notebook shows it.
func (b *ProgressBar) HTML() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.html(b.lastP)
}

func (b *ProgressBar) html(p train.Progress) string {
	var s strings.Builder
	frac := 0.0
	if p.Total > 0 {
		frac = float64(p.Done) / float64(p.Total)
	}
	fmt.Fprintf(&s, `<div class="detlab-progress" style="font-family:monospace">`)
	fmt.Fprintf(&s, `<b>%s</b> <progress value="%d" max="%d" style="width:40%%"></progress> %.0f%%`,
		html.EscapeString(b.title()), p.Done, p.Total, 100*frac)
	fmt.Fprintf(&s, `<br>epoch %d/%d · step %d/%d · %.2f it/s · elapsed %s · ETA %s · lr %.3g`,
		p.Epoch+1, p.Epochs, p.Done, p.Total, p.Rate, seconds(p.Elapsed), seconds(p.ETA), p.LR)
	if p.Scale != 1 && p.Scale != 0 {
		fmt.Fprintf(&s, ` · scale %g`, p.Scale)
	}
	if p.Skipped {
		s.WriteString(` · <span style="color:#b00">step skipped</span>`)
	}
	keys := make([]string, 0, len(p.Losses))
	for k := range p.Losses {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if len(keys) > 0 {
		s.WriteString("<br>")
		for i, k := range keys {
			if i > 0 {
				s.WriteString(" · ")
			}
			fmt.Fprintf(&s, "%s %.4f", html.EscapeString(k), p.Losses[k])
		}
	}
	s.WriteString("</div>")
	return s.String()
}

// seconds formats a duration in seconds as 1m05s; "?" when unknown.
func seconds(x float64) string {
	if math.IsNaN(x) || x < 0 || x > 1e9 {
		return "?"
	}
	return time.Duration(x * float64(time.Second)).Round(time.Second).String()
}
