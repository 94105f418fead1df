package display

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"image"
	"image/png"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

var errNoInput = errors.New("display: standard input is not available here")

// HTMLer is a value that renders itself as HTML.
type HTMLer interface{ HTML() string }

// Markdowner is a value that renders itself as Markdown.
type Markdowner interface{ Markdown() string }

// PNGer is a value that renders itself as a PNG image (the encoded bytes).
type PNGer interface{ PNG() []byte }

// SVGer is a value that renders itself as an SVG document.
type SVGer interface{ SVG() string }

// JSONer is a value that renders itself as JSON: the result must be
// marshalable by encoding/json.
type JSONer interface{ JSON() interface{} }

// PlotWidth and PlotHeight are the size at which plots are rendered.
var (
	PlotWidth  = 6 * vg.Inch
	PlotHeight = 4 * vg.Inch
)

// Bundle returns the rich MIME bundle for v: a *plot.Plot becomes PNG plus
// SVG, an image.Image a PNG, a Data itself, and a value with HTML, Markdown,
// PNG, SVG or JSON methods the matching MIME types (several methods give
// several types). The bundle always carries "text/plain". ok is false when v
// has no rich representation.
func Bundle(v interface{}) (d Data, ok bool) {
	switch x := v.(type) {
	case nil:
		return Data{}, false
	case Data:
		return x, true
	case *Data:
		if x == nil {
			return Data{}, false
		}
		return *x, true
	case *plot.Plot:
		if x == nil {
			return Data{}, false
		}
		d, err := PlotBundle(x, PlotWidth, PlotHeight)
		if err != nil {
			return Data{MIME: map[string]any{"text/plain": err.Error()}}, true
		}
		return d, true
	case image.Image:
		d, err := imageBundle(x)
		if err != nil {
			return Data{MIME: map[string]any{"text/plain": err.Error()}}, true
		}
		return d, true
	}
	d = Data{MIME: map[string]any{}}
	if h, ok := v.(HTMLer); ok {
		d.MIME["text/html"] = h.HTML()
	}
	if m, ok := v.(Markdowner); ok {
		d.MIME["text/markdown"] = m.Markdown()
	}
	if p, ok := v.(PNGer); ok {
		b := p.PNG()
		d.MIME["image/png"] = base64.StdEncoding.EncodeToString(b)
		if cfg, err := png.DecodeConfig(bytes.NewReader(b)); err == nil {
			d.Metadata = map[string]any{"image/png": map[string]any{"width": cfg.Width, "height": cfg.Height}}
		}
	}
	if s, ok := v.(SVGer); ok {
		d.MIME["image/svg+xml"] = s.SVG()
	}
	if j, ok := v.(JSONer); ok {
		d.MIME["application/json"] = j.JSON()
	}
	if len(d.MIME) == 0 {
		return Data{}, false
	}
	d.MIME["text/plain"] = plainText(v)
	return d, true
}

// plainText formats v as the text/plain part of a bundle without calling
// methods that might loop (a String method is fine).
func plainText(v interface{}) string {
	if s, ok := v.(fmt.Stringer); ok {
		return s.String()
	}
	t := fmt.Sprintf("%T", v)
	if i := strings.LastIndexByte(t, '.'); i >= 0 && strings.HasPrefix(t[i+1:], "_") {
		// The interpreter's wrapper around a notebook value.
		return "<rich output>"
	}
	return t
}

// bundleOrText is Bundle, falling back to text/plain formatting with %v.
func bundleOrText(v interface{}) Data {
	if d, ok := Bundle(v); ok {
		return d
	}
	return Data{MIME: map[string]any{"text/plain": fmt.Sprintf("%v", v)}}
}

// PlotBundle renders p at the given size as PNG (base64) and SVG.
func PlotBundle(p *plot.Plot, w, h vg.Length) (Data, error) {
	if p == nil {
		return Data{}, errors.New("display: nil plot")
	}
	if w <= 0 || h <= 0 {
		return Data{}, fmt.Errorf("display: plot size %vx%v must be positive", w, h)
	}
	img := vgimg.PngCanvas{Canvas: vgimg.New(w, h)}
	p.Draw(draw.New(img.Canvas))
	var pb bytes.Buffer
	if _, err := img.WriteTo(&pb); err != nil {
		return Data{}, fmt.Errorf("display: rendering plot as PNG: %w", err)
	}
	sc := vgsvg.New(w, h)
	p.Draw(draw.New(sc))
	var sb bytes.Buffer
	if _, err := sc.WriteTo(&sb); err != nil {
		return Data{}, fmt.Errorf("display: rendering plot as SVG: %w", err)
	}
	b := img.Image().Bounds()
	return Data{
		MIME: map[string]any{
			"image/png":     base64.StdEncoding.EncodeToString(pb.Bytes()),
			"image/svg+xml": sb.String(),
			"text/plain":    plotTitle(p),
		},
		Metadata: map[string]any{"image/png": map[string]any{"width": b.Dx(), "height": b.Dy()}},
	}, nil
}

func plotTitle(p *plot.Plot) string {
	if p.Title.Text != "" {
		return "<plot: " + p.Title.Text + ">"
	}
	return "<plot>"
}

func imageBundle(img image.Image) (Data, error) {
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		return Data{}, fmt.Errorf("display: encoding image as PNG: %w", err)
	}
	r := img.Bounds()
	return Data{
		MIME: map[string]any{
			"image/png":  base64.StdEncoding.EncodeToString(b.Bytes()),
			"text/plain": fmt.Sprintf("<image %dx%d>", r.Dx(), r.Dy()),
		},
		Metadata: map[string]any{"image/png": map[string]any{"width": r.Dx(), "height": r.Dy()}},
	}, nil
}

// PNG displays an encoded PNG image.
func PNG(b []byte) {
	d := Data{MIME: map[string]any{
		"image/png":  base64.StdEncoding.EncodeToString(b),
		"text/plain": "<png image>",
	}}
	if cfg, err := png.DecodeConfig(bytes.NewReader(b)); err == nil {
		d.Metadata = map[string]any{"image/png": map[string]any{"width": cfg.Width, "height": cfg.Height}}
	}
	Send(d)
}

// Image displays img as a PNG.
func Image(img image.Image) {
	if img == nil {
		return
	}
	d, err := imageBundle(img)
	if err != nil {
		Text(err.Error())
		return
	}
	Send(d)
}

// Plot displays p as PNG plus SVG at PlotWidth x PlotHeight.
func Plot(p *plot.Plot) {
	PlotSize(p, PlotWidth, PlotHeight)
}

// PlotSize displays p rendered at the given size.
func PlotSize(p *plot.Plot, w, h vg.Length) {
	d, err := PlotBundle(p, w, h)
	if err != nil {
		Text(err.Error())
		return
	}
	Send(d)
}

// JSON displays v as application/json; v must be marshalable by encoding/json.
func JSON(v interface{}) {
	Send(Data{MIME: map[string]any{"application/json": v, "text/plain": fmt.Sprintf("%v", v)}})
}
