package plots

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	stddraw "image/draw"
	"image/png"
	"os"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/detlab/detlab/lib/box"
)

// Image is a picture with things drawn on it (detections, anchors). It is an
// image.Image, so the kernel shows it inline as a PNG.
type Image struct {
	*image.RGBA
}

// PNG returns the image encoded as PNG (nil if encoding fails).
func (m *Image) PNG() []byte {
	if m == nil || m.RGBA == nil {
		return nil
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, m.RGBA); err != nil {
		return nil
	}
	return buf.Bytes()
}

// Save writes the image as a PNG file (the only format: the picture is
// raster). A path with another extension is an error.
func (m *Image) Save(path string) error {
	if f := formatOf(path); f != "png" {
		return fmt.Errorf("%w: an Image saves as .png, not %q", ErrInput, f)
	}
	b := m.PNG()
	if b == nil {
		return fmt.Errorf("%w: empty image", ErrInput)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("plots: %w", err)
	}
	return nil
}

// String describes the image for text output.
func (m *Image) String() string {
	if m == nil || m.RGBA == nil {
		return "plots.Image(nil)"
	}
	return fmt.Sprintf("plots.Image(%dx%d)", m.Rect.Dx(), m.Rect.Dy())
}

// MinDrawSize is the length the longer side of a picture is scaled up to
// (by an integer factor, nearest neighbour) before boxes and labels are
// drawn, so that labels stay legible on small images.
var MinDrawSize = 512

// painter draws boxes and labels in image pixel coordinates, y down.
type painter struct {
	c     *vgimg.Canvas
	scale float64 // picture pixels per input pixel
	w, h  float64 // picture size in pixels
	face  font.Face
}

// newPainter copies img, scaled up by an integer factor when it is small.
func newPainter(img image.Image, fontSize vg.Length) (*painter, error) {
	if img == nil {
		return nil, fmt.Errorf("%w: nil image", ErrInput)
	}
	b := img.Bounds()
	if b.Dx() <= 0 || b.Dy() <= 0 {
		return nil, fmt.Errorf("%w: empty image %v", ErrInput, b)
	}
	k := 1
	long := max(b.Dx(), b.Dy())
	for long*k < MinDrawSize {
		k++
	}
	src := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	stddraw.Draw(src, src.Rect, img, b.Min, stddraw.Src)
	pic := src
	if k > 1 {
		pic = image.NewRGBA(image.Rect(0, 0, b.Dx()*k, b.Dy()*k))
		for y := 0; y < pic.Rect.Dy(); y++ {
			for x := 0; x < pic.Rect.Dx(); x++ {
				pic.SetRGBA(x, y, src.RGBAAt(x/k, y/k))
			}
		}
	}
	w, h := float64(pic.Rect.Dx()), float64(pic.Rect.Dy())
	c := vgimg.NewWith(vgimg.UseWH(vg.Length(w), vg.Length(h)), vgimg.UseDPI(72))
	c.DrawImage(vg.Rectangle{Max: vg.Point{X: vg.Length(w), Y: vg.Length(h)}}, pic)
	face := font.DefaultCache.Lookup(plot.DefaultFont, fontSize)
	return &painter{c: c, scale: float64(k), w: w, h: h, face: face}, nil
}

// pt converts input-image pixels (y down) to canvas points (y up).
func (p *painter) pt(x, y float64) vg.Point {
	return vg.Point{X: vg.Length(x * p.scale), Y: vg.Length(p.h - y*p.scale)}
}

// clip returns b clipped to the input image, and false when nothing of it
// is inside.
func (p *painter) clip(b box.Box) (box.Box, bool) {
	W, H := float32(p.w/p.scale), float32(p.h/p.scale)
	c := box.Box{X1: max(b.X1, 0), Y1: max(b.Y1, 0), X2: min(b.X2, W), Y2: min(b.Y2, H)}
	return c, c.X2 > c.X1 && c.Y2 > c.Y1
}

// rect strokes a box in input pixels.
func (p *painter) rect(b box.Box, c color.Color, width vg.Length, dashes []vg.Length) {
	a, z := p.pt(float64(b.X1), float64(b.Y1)), p.pt(float64(b.X2), float64(b.Y2))
	var path vg.Path
	path.Move(a)
	path.Line(vg.Point{X: z.X, Y: a.Y})
	path.Line(z)
	path.Line(vg.Point{X: a.X, Y: z.Y})
	path.Close()
	p.c.Push()
	p.c.SetColor(c)
	p.c.SetLineWidth(width)
	p.c.SetLineDash(dashes, 0)
	p.c.Stroke(path)
	p.c.Pop()
}

// label writes txt in white on a bg-coloured tag whose bottom-left corner
// is at (x, y) in input pixels (kept inside the picture).
func (p *painter) label(txt string, x, y float64, bg color.Color) {
	tw := p.face.Width(txt)
	ext := p.face.Extents()
	th := ext.Ascent + ext.Descent
	pad := vg.Points(2)
	at := p.pt(x, y)
	at.X = min(max(at.X, 0), vg.Length(p.w)-tw-2*pad)
	at.Y = min(max(at.Y, 0), vg.Length(p.h)-th-2*pad)
	var r vg.Path
	r.Move(at)
	r.Line(vg.Point{X: at.X + tw + 2*pad, Y: at.Y})
	r.Line(vg.Point{X: at.X + tw + 2*pad, Y: at.Y + th + 2*pad})
	r.Line(vg.Point{X: at.X, Y: at.Y + th + 2*pad})
	r.Close()
	p.c.Push()
	p.c.SetColor(bg)
	p.c.Fill(r)
	p.c.SetColor(color.White)
	p.c.FillString(p.face, vg.Point{X: at.X + pad, Y: at.Y + pad + ext.Descent}, txt)
	p.c.Pop()
}

// labelHeight is the height of a label tag in input pixels.
func (p *painter) labelHeight() float64 {
	ext := p.face.Extents()
	return float64(ext.Ascent+ext.Descent+vg.Points(4)) / p.scale
}

// image returns the drawing.
func (p *painter) image() *Image {
	src := p.c.Image()
	out := image.NewRGBA(image.Rect(0, 0, src.Bounds().Dx(), src.Bounds().Dy()))
	stddraw.Draw(out, out.Rect, src, src.Bounds().Min, stddraw.Src)
	return &Image{RGBA: out}
}

// rectUnclipped strokes a box without clipping it to the image (anchors
// reach past the borders; the canvas clips what falls outside).
func (p *painter) rectUnclipped(b box.Box, c color.Color, width vg.Length) {
	p.rect(b, c, width, nil)
}

// dot fills a small disc at (x, y) in input pixels.
func (p *painter) dot(x, y float64, c color.Color) {
	at := p.pt(x, y)
	r := vg.Points(2)
	var path vg.Path
	path.Move(vg.Point{X: at.X + r, Y: at.Y})
	path.Arc(at, r, 0, 2*3.141592653589793)
	path.Close()
	p.c.Push()
	p.c.SetColor(c)
	p.c.Fill(path)
	p.c.Pop()
}
