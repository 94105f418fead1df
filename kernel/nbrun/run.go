// Package nbrun runs a Jupyter notebook headless: every code cell in order,
// in process, through the same engine the kernel uses, collecting outputs into
// the notebook as a front end would (streams merged, displays updated in place
// by display id, clear_output honoured, images kept as base64 PNG).
//
//	nb, _ := nbrun.ReadFile("train.ipynb")
//	nbrun.InjectParameters(nb, []nbrun.Param{{Name: "epochs", Value: "2"}})
//	res, err := nbrun.Run(ctx, sess, nb, nbrun.Options{})
//	nb.WriteFile("train.out.ipynb")
package nbrun

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/detlab/detlab/kernel/dispatch"
	"github.com/detlab/detlab/kernel/display"
	"github.com/detlab/detlab/kernel/session"
)

// Engine runs one cell; *session.Session implements it.
type Engine interface {
	Execute(ctx context.Context, code string, out session.Output) (*display.Data, error)
}

// Options tune Run. The zero value stops at the first failing cell.
type Options struct {
	// KeepGoing runs the remaining cells after a cell fails.
	KeepGoing bool
	// CellTimeout, when positive, interrupts a cell running longer.
	CellTimeout time.Duration
	// Progress, when set, receives one line per cell as it starts.
	Progress io.Writer
}

// CellError is a cell that failed.
type CellError struct {
	Index     int // position in Notebook.Cells
	Count     int // execution count
	Source    string
	Name      string
	Value     string
	Traceback []string
}

// Error formats the failure for a terminal.
func (e *CellError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "cell %d [%d]: %s: %s", e.Index, e.Count, e.Name, e.Value)
	for _, l := range e.Traceback {
		b.WriteString("\n    ")
		b.WriteString(l)
	}
	return b.String()
}

// Result sums up a run.
type Result struct {
	Executed int          // code cells run
	Errors   []*CellError // failing cells, in order
}

// ErrCellFailed is wrapped by Run's error when a cell failed.
var ErrCellFailed = errors.New("nbrun: a cell failed")

// Run executes nb's code cells in order with eng, replacing their outputs and
// execution counts, and normalizes nb to nbformat 4.5. Empty code cells are
// skipped. It returns an error wrapping ErrCellFailed when a cell failed (the
// notebook then holds the error output) or ctx's error when ctx ended.
func Run(ctx context.Context, eng Engine, nb *Notebook, opts Options) (*Result, error) {
	nb.Normalize()
	res := &Result{}
	displays := &displayIndex{byID: map[string][]displayRef{}}
	for i, c := range nb.Cells {
		if c.CellType != "code" {
			continue
		}
		c.Outputs, c.ExecutionCount = nil, nil
		if strings.TrimSpace(c.Source) == "" {
			continue
		}
		if err := ctx.Err(); err != nil {
			return res, fmt.Errorf("nbrun: %w", err)
		}
		res.Executed++
		n := res.Executed
		c.ExecutionCount = &n
		if opts.Progress != nil {
			fmt.Fprintf(opts.Progress, "[%d] cell %d\n", n, i)
		}
		out := &collector{cell: c, displays: displays}
		cellCtx, cancel := ctx, context.CancelFunc(func() {})
		if opts.CellTimeout > 0 {
			cellCtx, cancel = context.WithTimeout(ctx, opts.CellTimeout)
		}
		data, err := execute(cellCtx, eng, c.Source, out)
		cancel()
		if err != nil {
			name, value, tb := errorParts(err)
			out.add(map[string]any{"output_type": "error", "ename": name, "evalue": value, "traceback": tb})
			res.Errors = append(res.Errors, &CellError{Index: i, Count: n, Source: c.Source, Name: name, Value: value, Traceback: tb})
			if !opts.KeepGoing {
				break
			}
			continue
		}
		if data != nil && len(data.MIME) > 0 {
			out.add(map[string]any{"output_type": "execute_result", "execution_count": n,
				"data": data.MIME, "metadata": orEmpty(data.Metadata)})
		}
	}
	if len(res.Errors) > 0 {
		return res, fmt.Errorf("%w: %d failing cell(s)", ErrCellFailed, len(res.Errors))
	}
	return res, nil
}

func execute(ctx context.Context, eng Engine, code string, out session.Output) (data *display.Data, err error) {
	defer func() {
		if r := recover(); r != nil {
			data, err = nil, &session.ExecError{Name: "panic", Value: fmt.Sprint(r)}
		}
	}()
	return eng.Execute(ctx, code, out)
}

func errorParts(err error) (name, value string, tb []string) {
	var ee *session.ExecError
	if errors.As(err, &ee) {
		tb = ee.Traceback
		if tb == nil {
			tb = []string{}
		}
		return ee.Name, ee.Value, tb
	}
	return "Error", err.Error(), []string{err.Error()}
}

func languageInfo() map[string]any { return dispatch.LanguageInfo() }

// ErrNoStdin is what a cell reading standard input gets in a headless run.
var ErrNoStdin = errors.New("nbrun: no standard input in a headless run")

// displayIndex finds the outputs shown under a display id, across cells.
type displayIndex struct {
	mu   sync.Mutex
	byID map[string][]displayRef
}

type displayRef struct {
	c   *collector
	out map[string]any
}

// collector is the session.Output of one cell. It is safe for concurrent use
// and keeps working after its cell ended (goroutines may still print).
type collector struct {
	mu        sync.Mutex
	cell      *Cell
	displays  *displayIndex
	clearNext bool
}

func (o *collector) add(out map[string]any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.addLocked(out)
}

func (o *collector) addLocked(out map[string]any) {
	if o.clearNext {
		o.cell.Outputs = nil
		o.clearNext = false
	}
	o.cell.Outputs = append(o.cell.Outputs, out)
}

// Stream appends text, merged with the previous output when it is the same stream.
func (o *collector) Stream(name, text string) {
	if name != "stderr" {
		name = "stdout"
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.clearNext && len(o.cell.Outputs) > 0 {
		last := o.cell.Outputs[len(o.cell.Outputs)-1]
		if last["output_type"] == "stream" && last["name"] == name {
			last["text"] = last["text"].(string) + text
			return
		}
	}
	o.addLocked(map[string]any{"output_type": "stream", "name": name, "text": text})
}

// Display appends display_data and remembers its display id.
func (o *collector) Display(d display.Data) {
	out := map[string]any{"output_type": "display_data", "data": orEmpty(d.MIME), "metadata": orEmpty(d.Metadata)}
	o.add(out)
	if d.DisplayID != "" {
		o.displays.mu.Lock()
		o.displays.byID[d.DisplayID] = append(o.displays.byID[d.DisplayID], displayRef{o, out})
		o.displays.mu.Unlock()
	}
}

// Update replaces every output shown under d.DisplayID, in any cell.
func (o *collector) Update(d display.Data) {
	o.displays.mu.Lock()
	refs := append([]displayRef(nil), o.displays.byID[d.DisplayID]...)
	o.displays.mu.Unlock()
	for _, r := range refs {
		r.c.mu.Lock()
		r.out["data"] = orEmpty(d.MIME)
		r.out["metadata"] = orEmpty(d.Metadata)
		r.c.mu.Unlock()
	}
}

// Clear clears the cell's outputs now, or with wait when the next output comes.
func (o *collector) Clear(wait bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if wait {
		o.clearNext = true
		return
	}
	o.cell.Outputs = nil
}

// Input fails: there is nobody to ask.
func (o *collector) Input(prompt string, password bool) (string, error) {
	return "", ErrNoStdin
}
