package data

import (
	"fmt"
	"image"
	"math"
	"math/rand"

	"github.com/detlab/detlab/lib/box"
)

// Augmenter changes a sample's image and boxes together. It must not modify
// the sample it is given (the dataset may share its image and slices) and
// must draw all randomness from rng.
type Augmenter interface {
	Augment(s Sample, rng *rand.Rand) (Sample, error)
}

// AugmenterFunc adapts a function to Augmenter.
type AugmenterFunc func(s Sample, rng *rand.Rand) (Sample, error)

// Augment calls f.
func (f AugmenterFunc) Augment(s Sample, rng *rand.Rand) (Sample, error) { return f(s, rng) }

// Pipeline applies its augmenters in order.
type Pipeline []Augmenter

// Augment runs every augmenter in turn.
func (p Pipeline) Augment(s Sample, rng *rand.Rand) (Sample, error) {
	for i, a := range p {
		if a == nil {
			return Sample{}, fmt.Errorf("data: pipeline step %d is nil", i)
		}
		var err error
		if s, err = a.Augment(s, rng); err != nil {
			return Sample{}, err
		}
	}
	return s, nil
}

// HFlip mirrors the image left to right with probability P (torchvision's
// RandomHorizontalFlip uses 0.5).
type HFlip struct {
	P float64
}

// Augment flips s with probability P, drawing one number from rng.
func (f HFlip) Augment(s Sample, rng *rand.Rand) (Sample, error) {
	if !(f.P >= 0 && f.P <= 1) {
		return Sample{}, fmt.Errorf("data: HFlip probability %g outside [0,1]", f.P)
	}
	if rng.Float64() >= f.P {
		return s, nil
	}
	return FlipHorizontal(s), nil
}

// FlipHorizontal mirrors s's image left to right and maps each box
// (x1, x2) to (W-x2, W-x1).
func FlipHorizontal(s Sample) Sample {
	src := ToRGBA(s.Image)
	w, h := src.Rect.Dx(), src.Rect.Dy()
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		srow := src.Pix[y*src.Stride:][:4*w]
		drow := dst.Pix[y*dst.Stride:][:4*w]
		for x := range w {
			copy(drow[4*(w-1-x):][:4], srow[4*x:][:4])
		}
	}
	out := s.clone()
	out.Image, out.Pixels, out.Width, out.Height = dst, nil, w, h
	W := float32(w)
	for i, b := range out.Boxes {
		out.Boxes[i] = box.Box{X1: W - b.X2, Y1: b.Y1, X2: W - b.X1, Y2: b.Y2}
	}
	return out
}

// ScaleJitter resizes the image (bilinear) by a factor drawn uniformly from
// [Min, Max], scaling the boxes with it. Both must be positive; Min == Max
// gives a fixed rescale.
//
// A detector's own transform (lib/transform) resizes every image to its
// min/max size, which undoes a plain rescale. With KeepSize the rescaled
// image goes back onto a canvas of the original size: a larger one is
// cropped at a random offset (zoom in), a smaller one is placed at a random
// offset on a canvas of its mean colour (zoom out). Boxes move with the
// pixels and are clipped to the canvas; a box keeping less than MinVisible
// (default 0.3) of its area is dropped.
type ScaleJitter struct {
	Min, Max   float64
	KeepSize   bool
	MinVisible float64
}

// Augment rescales s, drawing the factor (and with KeepSize the offsets)
// from rng.
func (j ScaleJitter) Augment(s Sample, rng *rand.Rand) (Sample, error) {
	if !(j.Min > 0 && j.Max >= j.Min && j.Max < 100) {
		return Sample{}, fmt.Errorf("data: ScaleJitter range [%g, %g] must satisfy 0 < Min <= Max < 100", j.Min, j.Max)
	}
	if !(j.MinVisible >= 0 && j.MinVisible <= 1) {
		return Sample{}, fmt.Errorf("data: ScaleJitter MinVisible %g outside [0,1]", j.MinVisible)
	}
	f := j.Min + rng.Float64()*(j.Max-j.Min)
	b := s.Image.Bounds()
	w := max(1, int(math.Round(float64(b.Dx())*f)))
	h := max(1, int(math.Round(float64(b.Dy())*f)))
	out, err := Resize(s, w, h)
	if err != nil || !j.KeepSize {
		return out, err
	}
	minVis := j.MinVisible
	if minVis == 0 {
		minVis = 0.3
	}
	W, H := b.Dx(), b.Dy()
	ox, oy := offset(rng, w, W), offset(rng, h, H)
	return recanvas(out, W, H, ox, oy, minVis), nil
}

// offset draws where an image of size n goes on a canvas of size c: the
// canvas origin within the image (n > c) or minus the image origin within
// the canvas (n < c).
func offset(rng *rand.Rand, n, c int) int {
	if n >= c {
		return rng.Intn(n - c + 1)
	}
	return -rng.Intn(c - n + 1)
}

// recanvas places s's image on a W x H canvas so that canvas pixel (x,y) is
// image pixel (x+ox, y+oy); uncovered canvas pixels take the image's mean
// colour.
func recanvas(s Sample, W, H, ox, oy int, minVisible float64) Sample {
	src := ToRGBA(s.Image)
	w, h := src.Rect.Dx(), src.Rect.Dy()
	dst := image.NewRGBA(image.Rect(0, 0, W, H))
	if w < W || h < H {
		var sum [3]uint64
		for y := range h {
			row := src.Pix[y*src.Stride:]
			for x := range w {
				sum[0] += uint64(row[4*x])
				sum[1] += uint64(row[4*x+1])
				sum[2] += uint64(row[4*x+2])
			}
		}
		n := uint64(w * h)
		fill := [4]uint8{uint8(sum[0] / n), uint8(sum[1] / n), uint8(sum[2] / n), 0xff}
		for i := 0; i < len(dst.Pix); i += 4 {
			copy(dst.Pix[i:i+4], fill[:])
		}
	}
	// The overlap in canvas coordinates.
	x0, y0 := max(0, -ox), max(0, -oy)
	x1, y1 := min(W, w-ox), min(H, h-oy)
	for y := y0; y < y1; y++ {
		copy(dst.Pix[y*dst.Stride+4*x0:y*dst.Stride+4*x1], src.Pix[(y+oy)*src.Stride+4*(x0+ox):])
	}
	out := s
	out.Image, out.Pixels, out.Width, out.Height = dst, nil, W, H
	out.Boxes, out.Labels, out.Difficult, out.Crowd = nil, nil, nil, nil
	fx, fy := float32(ox), float32(oy)
	for i, b := range s.Boxes {
		m := box.Box{X1: b.X1 - fx, Y1: b.Y1 - fy, X2: b.X2 - fx, Y2: b.Y2 - fy}
		c := box.Box{X1: clamp(m.X1, float32(W)), Y1: clamp(m.Y1, float32(H)), X2: clamp(m.X2, float32(W)), Y2: clamp(m.Y2, float32(H))}
		if c.X2 <= c.X1 || c.Y2 <= c.Y1 || float64(c.Area()) < minVisible*float64(m.Area()) {
			continue
		}
		keepObject(&out, s, i, c)
	}
	return out
}

// Resize scales s's image to w x h pixels (bilinear, pixel centres aligned
// as torch's align_corners=False) and its boxes by w/W and h/H.
func Resize(s Sample, w, h int) (Sample, error) {
	if w <= 0 || h <= 0 || w > 1<<15 || h > 1<<15 {
		return Sample{}, fmt.Errorf("data: resize %q to %dx%d: size out of range", s.ID, w, h)
	}
	src := ToRGBA(s.Image)
	sw, sh := src.Rect.Dx(), src.Rect.Dy()
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	type tap struct {
		i0, i1 int
		f      float64
	}
	taps := func(in, out int) []tap {
		t := make([]tap, out)
		scale := float64(in) / float64(out)
		for o := range out {
			x := math.Max(0, (float64(o)+0.5)*scale-0.5)
			i0 := min(int(x), in-1)
			t[o] = tap{i0, min(i0+1, in-1), x - float64(i0)}
		}
		return t
	}
	tx, ty := taps(sw, w), taps(sh, h)
	for y, vy := range ty {
		r0 := src.Pix[vy.i0*src.Stride:]
		r1 := src.Pix[vy.i1*src.Stride:]
		d := dst.Pix[y*dst.Stride:]
		for x, vx := range tx {
			for k := range 3 {
				top := float64(r0[4*vx.i0+k])*(1-vx.f) + float64(r0[4*vx.i1+k])*vx.f
				bot := float64(r1[4*vx.i0+k])*(1-vx.f) + float64(r1[4*vx.i1+k])*vx.f
				d[4*x+k] = uint8(math.Round(top*(1-vy.f) + bot*vy.f))
			}
			d[4*x+3] = 0xff
		}
	}
	out := s.clone()
	out.Image, out.Pixels, out.Width, out.Height = dst, nil, w, h
	fx, fy := float32(w)/float32(sw), float32(h)/float32(sh)
	for i, b := range out.Boxes {
		out.Boxes[i] = box.Box{X1: b.X1 * fx, Y1: b.Y1 * fy, X2: b.X2 * fx, Y2: b.Y2 * fy}
	}
	return out, nil
}

// ColorJitter changes brightness, contrast, saturation and hue by random
// amounts, in a random order, as torchvision's ColorJitter: the brightness,
// contrast and saturation factors are drawn from [max(0,1-v), 1+v] and the
// hue shift from [-Hue, Hue] (a fraction of the colour circle, at most
// 0.5). Zero fields leave that property alone. Boxes do not change.
type ColorJitter struct {
	Brightness, Contrast, Saturation, Hue float64
}

// Augment jitters s's colours.
func (c ColorJitter) Augment(s Sample, rng *rand.Rand) (Sample, error) {
	for _, v := range []float64{c.Brightness, c.Contrast, c.Saturation} {
		if !(v >= 0 && v < 1e6) {
			return Sample{}, fmt.Errorf("data: ColorJitter %+v: brightness, contrast and saturation must be >= 0", c)
		}
	}
	if !(c.Hue >= 0 && c.Hue <= 0.5) {
		return Sample{}, fmt.Errorf("data: ColorJitter hue %g outside [0, 0.5]", c.Hue)
	}
	src := ToRGBA(s.Image)
	w, h := src.Rect.Dx(), src.Rect.Dy()
	px := make([]float32, 3*w*h) // RGB in [0,1]
	for y := range h {
		row := src.Pix[y*src.Stride:]
		for x := range w {
			for k := range 3 {
				px[3*(y*w+x)+k] = float32(row[4*x+k]) / 255
			}
		}
	}
	factor := func(v float64) float32 {
		lo := math.Max(0, 1-v)
		return float32(lo + rng.Float64()*(1+v-lo))
	}
	for _, op := range rng.Perm(4) {
		switch {
		case op == 0 && c.Brightness > 0:
			f := factor(c.Brightness)
			for i, v := range px {
				px[i] = clamp01(f * v)
			}
		case op == 1 && c.Contrast > 0:
			f := factor(c.Contrast)
			var sum float64
			for i := 0; i < len(px); i += 3 {
				sum += float64(gray(px[i], px[i+1], px[i+2]))
			}
			m := (1 - f) * float32(sum/float64(w*h))
			for i, v := range px {
				px[i] = clamp01(f*v + m)
			}
		case op == 2 && c.Saturation > 0:
			f := factor(c.Saturation)
			for i := 0; i < len(px); i += 3 {
				g := (1 - f) * gray(px[i], px[i+1], px[i+2])
				px[i], px[i+1], px[i+2] = clamp01(f*px[i]+g), clamp01(f*px[i+1]+g), clamp01(f*px[i+2]+g)
			}
		case op == 3 && c.Hue > 0:
			shiftHue(px, float32((rng.Float64()*2-1)*c.Hue))
		}
	}
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := 0; i < w*h; i++ {
		for k := range 3 {
			dst.Pix[4*i+k] = uint8(px[3*i+k]*255 + 0.5)
		}
		dst.Pix[4*i+3] = 0xff
	}
	out := s.clone()
	out.Image, out.Pixels, out.Width, out.Height = dst, nil, w, h
	return out, nil
}

func gray(r, g, b float32) float32 { return 0.299*r + 0.587*g + 0.114*b }

func clamp01(v float32) float32 { return min(max(v, 0), 1) }

// shiftHue rotates each pixel's hue by d (fractions of a turn) in HSV.
func shiftHue(px []float32, d float32) {
	for i := 0; i < len(px); i += 3 {
		r, g, b := px[i], px[i+1], px[i+2]
		mx, mn := max(r, g, b), min(r, g, b)
		c := mx - mn
		if c == 0 {
			continue
		}
		var hh float32 // in [-1, 5)
		switch mx {
		case r:
			hh = (g - b) / c
		case g:
			hh = (b-r)/c + 2
		default:
			hh = (r-g)/c + 4
		}
		hue := hh/6 + d
		hue -= float32(math.Floor(float64(hue)))
		hh = hue * 6
		sector := min(int(hh), 5)
		f := hh - float32(sector)
		v, m := mx, mn
		up, down := m+c*f, mx-c*f
		switch sector {
		case 0:
			r, g, b = v, up, m
		case 1:
			r, g, b = down, v, m
		case 2:
			r, g, b = m, v, up
		case 3:
			r, g, b = m, down, v
		case 4:
			r, g, b = up, m, v
		default:
			r, g, b = v, m, down
		}
		px[i], px[i+1], px[i+2] = r, g, b
	}
}
