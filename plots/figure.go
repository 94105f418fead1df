package plots

import (
	"bytes"
	"errors"
	"fmt"
	"image/color"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgpdf"
	"gonum.org/v1/plot/vg/vgsvg"
)

// ErrInput reports data a figure cannot be drawn from: an empty history,
// no finite values, mismatched lengths, an empty image.
var ErrInput = errors.New("plots: bad input")

// Default figure size: 16 cm x 10 cm, legible in a notebook and in a paper.
var (
	DefaultWidth  = 16 * vg.Centimeter
	DefaultHeight = 10 * vg.Centimeter
)

// DPI is the resolution of PNG renderings (the SVG and PDF are vector).
var DPI = 144

// Figure is a plot with the size it is rendered at. The kernel shows it
// through its PNG and SVG methods; change Width and Height (or the Plot's
// fields) before showing or saving it.
type Figure struct {
	Plot          *plot.Plot
	Width, Height vg.Length
}

// newFigure wraps p at the default size.
func newFigure(p *plot.Plot) *Figure {
	return &Figure{Plot: p, Width: DefaultWidth, Height: DefaultHeight}
}

// Render encodes the figure as "png", "svg" or "pdf".
func (f *Figure) Render(format string) ([]byte, error) {
	if f == nil || f.Plot == nil {
		return nil, fmt.Errorf("%w: nil figure", ErrInput)
	}
	w, h := f.Width, f.Height
	if w <= 0 || h <= 0 {
		return nil, fmt.Errorf("%w: figure size %v x %v must be positive", ErrInput, w, h)
	}
	var wt io.WriterTo
	switch strings.ToLower(format) {
	case "png":
		c := vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(DPI))
		f.Plot.Draw(draw.New(c))
		wt = vgimg.PngCanvas{Canvas: c}
	case "svg":
		c := vgsvg.New(w, h)
		f.Plot.Draw(draw.New(c))
		wt = c
	case "pdf":
		c := vgpdf.New(w, h)
		f.Plot.Draw(draw.New(c))
		wt = c
	default:
		return nil, fmt.Errorf("%w: unknown format %q (png, svg or pdf)", ErrInput, format)
	}
	var buf bytes.Buffer
	if _, err := wt.WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("plots: render %s: %w", format, err)
	}
	return buf.Bytes(), nil
}

// PNG returns the figure as PNG bytes (nil if it cannot be rendered).
func (f *Figure) PNG() []byte {
	b, _ := f.Render("png")
	return b
}

// SVG returns the figure as an SVG document ("" if it cannot be rendered).
func (f *Figure) SVG() string {
	b, _ := f.Render("svg")
	return string(b)
}

// Save writes the figure to path in the format its extension names (.png,
// .svg or .pdf).
func (f *Figure) Save(path string) error {
	b, err := f.Render(formatOf(path))
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("plots: %w", err)
	}
	return nil
}

// String describes the figure for text output.
func (f *Figure) String() string {
	if f == nil || f.Plot == nil {
		return "plots.Figure(nil)"
	}
	return fmt.Sprintf("plots.Figure(%q, %v x %v)", f.Plot.Title.Text, f.Width, f.Height)
}

func formatOf(path string) string {
	return strings.TrimPrefix(strings.ToLower(filepath.Ext(path)), ".")
}

// Palette is the fixed colour cycle used for classes and series (the
// Tableau 10 colours matplotlib uses): class label k takes Palette[k %
// len(Palette)], so a class keeps its colour across figures.
var Palette = []color.RGBA{
	{31, 119, 180, 255},  // blue
	{255, 127, 14, 255},  // orange
	{44, 160, 44, 255},   // green
	{214, 39, 40, 255},   // red
	{148, 103, 189, 255}, // purple
	{140, 86, 75, 255},   // brown
	{227, 119, 194, 255}, // pink
	{127, 127, 127, 255}, // grey
	{188, 189, 34, 255},  // olive
	{23, 190, 207, 255},  // cyan
}

// ClassColor returns the colour of class label k (see Palette).
func ClassColor(k int) color.RGBA {
	if k < 0 {
		k = -k
	}
	return Palette[k%len(Palette)]
}

// withAlpha returns c with alpha a (not premultiplied: NRGBA).
func withAlpha(c color.RGBA, a uint8) color.NRGBA {
	return color.NRGBA{R: c.R, G: c.G, B: c.B, A: a}
}

// newPlot returns a plot with title and axis labels and a light grid.
func newPlot(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = x
	p.Y.Label.Text = y
	p.X.Tick.Marker = plainTicks{}
	p.Y.Tick.Marker = plainTicks{}
	p.Legend.Top = true
	return p
}

// plainTicks are gonum's default ticks with labels written without trailing
// zeros ("250", not "250.00").
type plainTicks struct{}

// Ticks implements plot.Ticker.
func (plainTicks) Ticks(lo, hi float64) []plot.Tick {
	ts := plot.DefaultTicks{}.Ticks(lo, hi)
	for i := range ts {
		if v, err := strconv.ParseFloat(ts[i].Label, 64); err == nil && ts[i].Label != "" {
			ts[i].Label = strconv.FormatFloat(v, 'f', -1, 64)
		}
	}
	return ts
}

// pow2Ticks label the powers of two between lo and hi ("2^16").
type pow2Ticks struct{}

// Ticks implements plot.Ticker.
func (pow2Ticks) Ticks(lo, hi float64) []plot.Tick {
	var ts []plot.Tick
	step := 1
	if n := math.Log2(hi) - math.Log2(lo); n > 12 {
		step = int(math.Ceil(n / 12))
	}
	for k := int(math.Ceil(math.Log2(lo))); float64(k) <= math.Log2(hi); k++ {
		label := ""
		if k%step == 0 {
			label = fmt.Sprintf("2^%d", k)
		}
		ts = append(ts, plot.Tick{Value: math.Pow(2, float64(k)), Label: label})
	}
	return ts
}
