package train

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"
)

// Progress describes training after an optimizer step.
type Progress struct {
	// Epoch is the epoch in progress (from 0) of Epochs; Batch the
	// batches of it done, of Batches.
	Epoch, Epochs, Batch, Batches int
	// Step counts optimizer steps since the start of training; Done and
	// Total count this Fit call's steps.
	Step, Done, Total int
	// Rate is steps per second in this Fit call, Elapsed its seconds and
	// ETA the estimated seconds left.
	Rate, Elapsed, ETA float64
	// Losses are the step's losses ("loss" is the total).
	Losses map[string]float32
	// LR is the step's learning rate and Scale the loss scale (1 without
	// AMP); Skipped reports a step AMP skipped.
	LR, Scale float64
	Skipped   bool
}

// Reporter receives progress (a terminal line, a notebook bar).
type Reporter interface {
	Report(p Progress)
}

// ReporterFunc adapts a function to Reporter.
type ReporterFunc func(p Progress)

// Report implements Reporter.
func (f ReporterFunc) Report(p Progress) { f(p) }

// Terminal prints a progress line per report: rewritten in place with \r
// when TTY is set, one line each otherwise.
type Terminal struct {
	W   io.Writer
	TTY bool
	// Every prints one report in Every (default 1); the last step of
	// the call is always printed.
	Every int
}

// NewTerminal returns a reporter writing to os.Stderr, rewriting its line
// when stderr is a terminal.
func NewTerminal() *Terminal {
	tty := false
	if fi, err := os.Stderr.Stat(); err == nil {
		tty = fi.Mode()&os.ModeCharDevice != 0
	}
	return &Terminal{W: os.Stderr, TTY: tty}
}

// Report implements Reporter.
func (r *Terminal) Report(p Progress) {
	if r.Every > 1 && p.Done%r.Every != 0 && p.Done != p.Total {
		return
	}
	line := FormatProgress(p)
	if r.TTY {
		end := ""
		if p.Done == p.Total {
			end = "\n"
		}
		fmt.Fprintf(r.W, "\r\x1b[K%s%s", line, end)
		return
	}
	fmt.Fprintln(r.W, line)
}

// FormatProgress renders p as one line: epoch, step counts, rate, ETA,
// losses, learning rate and loss scale.
func FormatProgress(p Progress) string {
	var b strings.Builder
	fmt.Fprintf(&b, "epoch %d/%d batch %d/%d step %d/%d %.2f it/s ETA %s",
		p.Epoch+1, p.Epochs, p.Batch, p.Batches, p.Done, p.Total, p.Rate, fmtDuration(p.ETA))
	keys := make([]string, 0, len(p.Losses))
	for k := range p.Losses {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, " %s %.4f", k, p.Losses[k])
	}
	fmt.Fprintf(&b, " lr %.3g", p.LR)
	if p.Scale != 1 {
		fmt.Fprintf(&b, " scale %g", p.Scale)
	}
	if p.Skipped {
		b.WriteString(" (skipped)")
	}
	return b.String()
}

func fmtDuration(s float64) string {
	if s != s || s < 0 || s > 1e9 {
		return "?"
	}
	return time.Duration(s * float64(time.Second)).Round(time.Second).String()
}
