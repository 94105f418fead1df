package display

import (
	"bytes"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/detlab/detlab/lib/train"
)

// recSink records every display call in order.
type recSink struct {
	mu    sync.Mutex
	calls []string // "display:<id>" or "update:<id>"
	data  []Data
}

func (s *recSink) Display(d Data) { s.add("display", d) }
func (s *recSink) Update(d Data)  { s.add("update", d) }
func (s *recSink) Clear(bool)     {}
func (s *recSink) add(kind string, d Data) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, kind+":"+d.DisplayID)
	s.data = append(s.data, d)
}

func steps(total int) []train.Progress {
	var ps []train.Progress
	for i := 1; i <= total; i++ {
		ps = append(ps, train.Progress{Epoch: 0, Epochs: 1, Batch: i, Batches: total, Step: i - 1,
			Done: i, Total: total, Rate: 2, Elapsed: float64(i) / 2, ETA: float64(total-i) / 2,
			Losses: map[string]float32{"loss": float32(10 - i), "loss_<cls>": 1}, LR: 0.01, Scale: 1})
	}
	return ps
}

func TestProgressNotebook(t *testing.T) {
	tests := []struct {
		name        string
		total       int
		plotEvery   int
		wantPlots   int // plot displays + updates
		wantBarMsgs int
	}{
		{"plot every 5 of 12", 12, 5, 3, 12}, // steps 5, 10, 12
		{"default every 10 of 10", 10, 0, 1, 10},
		{"no plot", 7, -1, 0, 7},
		{"single step", 1, 5, 0, 1}, // one point: nothing to plot yet
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sink := &recSink{}
			SetSink(sink)
			defer SetSink(nil)
			b := NewProgress("test")
			b.PlotEvery = tc.plotEvery
			b.MinInterval = -1 // draw every step
			b.Fallback = train.ReporterFunc(func(train.Progress) { t.Error("fallback used in a notebook") })
			for _, p := range steps(tc.total) {
				b.Report(p)
			}
			var bar, plots []string
			var barID string
			for i, c := range sink.calls {
				d := sink.data[i]
				if _, ok := d.MIME["image/png"]; ok {
					plots = append(plots, c)
					continue
				}
				if barID == "" {
					barID = d.DisplayID
				}
				if d.DisplayID != barID {
					t.Errorf("bar message %d under id %q, want %q", i, d.DisplayID, barID)
				}
				bar = append(bar, c)
			}
			if barID == "" {
				t.Fatal("no bar shown")
			}
			if len(bar) != tc.wantBarMsgs || bar[0] != "display:"+barID {
				t.Errorf("bar messages %v, want %d starting with a display", bar, tc.wantBarMsgs)
			}
			for _, c := range bar[1:] {
				if !strings.HasPrefix(c, "update:") {
					t.Errorf("later bar message %q is not an update", c)
				}
			}
			if len(plots) != tc.wantPlots {
				t.Fatalf("plot messages %v, want %d", plots, tc.wantPlots)
			}
			for i, c := range plots {
				if (i == 0) != strings.HasPrefix(c, "display:") {
					t.Errorf("plot message %d is %q", i, c)
				}
			}
			h := b.HTML()
			for _, want := range []string{`<progress value="` + strconv.Itoa(tc.total), "loss_&lt;cls&gt;", "it/s", "ETA"} {
				if !strings.Contains(h, want) {
					t.Errorf("bar HTML lacks %q: %s", want, h)
				}
			}
		})
	}
}

func TestProgressThrottle(t *testing.T) {
	sink := &recSink{}
	SetSink(sink)
	defer SetSink(nil)
	b := NewProgress("")
	b.PlotEvery = -1
	b.MinInterval = 1 << 62 // never by time
	for _, p := range steps(20) {
		b.Report(p)
	}
	// The first and the last step only.
	if len(sink.calls) != 2 || !strings.HasPrefix(sink.calls[1], "update:") {
		t.Fatalf("calls %v, want a display and one final update", sink.calls)
	}
	if !strings.Contains(sink.data[1].MIME["text/html"].(string), `value="20"`) {
		t.Errorf("final update does not show the last step: %v", sink.data[1].MIME["text/html"])
	}
}

func TestProgressSecondFitStartsNewBar(t *testing.T) {
	sink := &recSink{}
	SetSink(sink)
	defer SetSink(nil)
	b := NewProgress("x")
	b.PlotEvery = -1
	b.MinInterval = -1
	for _, p := range steps(3) {
		b.Report(p)
	}
	for _, p := range steps(2) {
		b.Report(p)
	}
	if got := strings.Count(strings.Join(sink.calls, " "), "display:"); got != 2 {
		t.Errorf("%d new displays, want one per Fit: %v", got, sink.calls)
	}
	if len(b.History().Records) != 5 {
		t.Errorf("history has %d steps, want 5", len(b.History().Records))
	}
}

func TestProgressTerminalFallback(t *testing.T) {
	SetSink(nil)
	var buf bytes.Buffer
	b := NewProgress("t")
	b.Fallback = &train.Terminal{W: &buf}
	for _, p := range steps(3) {
		b.Report(p)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 || !strings.Contains(lines[2], "step 3/3") {
		t.Errorf("terminal output %q, want three progress lines", buf.String())
	}
	if p, err := b.Plot(); err != nil || p == nil {
		t.Errorf("Plot after terminal reports: %v", err)
	}
}

func TestProgressPlotEmpty(t *testing.T) {
	if _, err := NewProgress("").Plot(); err == nil {
		t.Error("Plot with no reports: want an error")
	}
}
