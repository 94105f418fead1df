// Package display is what notebook cells import to show rich output: HTML,
// Markdown, images, gonum plots, JSON, and displays that update in place
// (progress bars).
//
// In a notebook the detlab kernel installs a Sink for each cell it runs; every
// call here turns into a Jupyter display_data, update_display_data or
// clear_output message. Outside a notebook (a plain Go program, a test) no sink
// is installed and the calls do nothing, so the same code runs everywhere:
//
//	display.HTML("<b>epoch 3</b>")
//	id := display.NewID()
//	display.ShowID(id, "0%")
//	display.Update(id, "50%")
//
// The final expression of a cell is rendered through Bundle, so a cell whose
// last line is a *plot.Plot, an image.Image, or a value with an HTML, Markdown,
// PNG, SVG or JSON method shows as a picture or a formatted document.
package display

import (
	"crypto/rand"
	"encoding/hex"
	"sync"
)

// Data is one MIME bundle as Jupyter's display_data carries it.
type Data struct {
	// MIME maps a MIME type to its content: "text/plain", "text/html",
	// "text/markdown" and "image/svg+xml" hold strings, "image/png" a base64
	// string, "application/json" any JSON value.
	MIME map[string]any
	// Metadata holds per-MIME metadata, e.g. {"image/png": {"width": 640, "height": 480}}.
	Metadata map[string]any
	// DisplayID is the transient display_id; "" for none.
	DisplayID string
}

// Sink receives what cells display. The kernel session installs one per
// execution.
type Sink interface {
	// Display shows a new output (display_data).
	Display(d Data)
	// Update replaces the output shown under d.DisplayID (update_display_data).
	Update(d Data)
	// Clear clears the cell's output (clear_output); with wait the clearing
	// happens when the next output arrives.
	Clear(wait bool)
}

// InputSink is a Sink that can also ask the user for a line of text
// (Jupyter's input_request). The kernel's sink implements it.
type InputSink interface {
	Sink
	// Input asks the front end for one line; it fails when the front end does
	// not allow standard input.
	Input(prompt string, password bool) (string, error)
}

var (
	mu   sync.RWMutex
	sink Sink
)

// SetSink installs s as the receiver of all displays; nil means outside a
// notebook, where display calls do nothing. The kernel calls it; cells do not
// need to.
func SetSink(s Sink) {
	mu.Lock()
	sink = s
	mu.Unlock()
}

func current() Sink {
	mu.RLock()
	defer mu.RUnlock()
	return sink
}

// IsNotebook reports whether a sink is installed, i.e. whether displays go
// somewhere.
func IsNotebook() bool { return current() != nil }

// Send displays the bundle d as it is.
func Send(d Data) {
	if s := current(); s != nil {
		s.Display(d)
	}
}

// SendUpdate replaces the display d.DisplayID with d.
func SendUpdate(d Data) {
	if s := current(); s != nil && d.DisplayID != "" {
		s.Update(d)
	}
}

// Show displays v with its richest representation (see Bundle); values with
// none show as text.
func Show(v interface{}) {
	Send(bundleOrText(v))
}

// ShowID displays v under the display id, so that Update(id, …) can replace
// it later.
func ShowID(id string, v interface{}) {
	d := bundleOrText(v)
	d.DisplayID = id
	Send(d)
}

// Update replaces what is shown under the display id with v's representation.
// It does nothing when id is "".
func Update(id string, v interface{}) {
	d := bundleOrText(v)
	d.DisplayID = id
	SendUpdate(d)
}

// Clear clears the output of the running cell. With wait, the clearing waits
// until new output arrives, which avoids flicker in loops.
func Clear(wait bool) {
	if s := current(); s != nil {
		s.Clear(wait)
	}
}

// NewID returns a fresh display id for ShowID and Update.
func NewID() string {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("display: no randomness: " + err.Error())
	}
	return "detlab-" + hex.EncodeToString(b[:])
}

// HTML displays an HTML fragment.
func HTML(s string) { Send(Data{MIME: map[string]any{"text/html": s, "text/plain": s}}) }

// Markdown displays Markdown text.
func Markdown(s string) { Send(Data{MIME: map[string]any{"text/markdown": s, "text/plain": s}}) }

// Text displays plain text as a display (not a stream).
func Text(s string) { Send(Data{MIME: map[string]any{"text/plain": s}}) }

// SVG displays an SVG document.
func SVG(s string) { Send(Data{MIME: map[string]any{"image/svg+xml": s, "text/plain": "<svg image>"}}) }

// Input asks the user for a line of text through the notebook front end
// (Jupyter's input_request). It returns an error outside a notebook or when
// the front end does not allow input.
func Input(prompt string) (string, error) {
	s, ok := current().(InputSink)
	if !ok {
		return "", errNoInput
	}
	return s.Input(prompt, false)
}

// Password is Input with the typed text hidden.
func Password(prompt string) (string, error) {
	s, ok := current().(InputSink)
	if !ok {
		return "", errNoInput
	}
	return s.Input(prompt, true)
}
