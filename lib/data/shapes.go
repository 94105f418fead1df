package data

import (
	"fmt"
	"image"
	"math"
	"math/rand"

	"github.com/detlab/detlab/lib/box"
)

// The shape classes Shapes can draw.
const (
	Rectangle = "rectangle"
	Ellipse   = "ellipse"
	Triangle  = "triangle"
	Cross     = "cross"
)

// ShapesConfig configures the synthetic dataset. Zero fields take the
// defaults in ShapesDefaults; Seed 0 is a seed like any other.
type ShapesConfig struct {
	// N is the number of images (default 500).
	N int
	// Width and Height are the image size in pixels (default 256x256).
	Width, Height int
	// Classes are the shapes drawn, a subset of Rectangle, Ellipse,
	// Triangle and Cross (default all four, in that order).
	Classes []string
	// MinObjects and MaxObjects bound the labelled shapes per image
	// (default 1 and 6).
	MinObjects, MaxObjects int
	// MinSize and MaxSize bound a shape's longer side in pixels (default
	// 16 and half the smaller image side).
	MinSize, MaxSize int
	// MaxIoU is the largest IoU a new shape may have with one already
	// placed (default 0.35), so shapes overlap without hiding each other.
	MaxIoU float64
	// Noise is the standard deviation of the background pixel noise, in
	// 8-bit levels (default 12; negative means none).
	Noise float64
	// Distractors is the most unlabelled lines drawn as clutter (default 4;
	// negative means none).
	Distractors int
	// Seed selects the images.
	Seed int64
}

// ShapesDefaults returns the default configuration.
func ShapesDefaults() ShapesConfig {
	return ShapesConfig{N: 500, Width: 256, Height: 256, Classes: []string{Rectangle, Ellipse, Triangle, Cross},
		MinObjects: 1, MaxObjects: 6, MinSize: 16, MaxSize: 128, MaxIoU: 0.35, Noise: 12, Distractors: 4}
}

// ShapesDataset is the synthetic dataset: image i is drawn on demand from
// (Seed, i), so any index costs the same and gives the same pixels.
type ShapesDataset struct {
	cfg     ShapesConfig
	names   []string
	classes []string // with Background
}

// Shapes returns the synthetic dataset for cfg, filling zero fields with
// defaults and checking the rest.
func Shapes(cfg ShapesConfig) (*ShapesDataset, error) {
	d := ShapesDefaults()
	if cfg.N == 0 {
		cfg.N = d.N
	}
	if cfg.Width == 0 {
		cfg.Width = d.Width
	}
	if cfg.Height == 0 {
		cfg.Height = d.Height
	}
	if cfg.Classes == nil {
		cfg.Classes = d.Classes
	}
	if cfg.MinObjects == 0 {
		cfg.MinObjects = d.MinObjects
	}
	if cfg.MaxObjects == 0 {
		cfg.MaxObjects = max(d.MaxObjects, cfg.MinObjects)
	}
	if cfg.MinSize == 0 {
		cfg.MinSize = d.MinSize
	}
	if cfg.MaxSize == 0 {
		cfg.MaxSize = max(cfg.MinSize, min(cfg.Width, cfg.Height)/2)
	}
	if cfg.MaxIoU == 0 {
		cfg.MaxIoU = d.MaxIoU
	}
	if cfg.Noise == 0 {
		cfg.Noise = d.Noise
	}
	if cfg.Distractors == 0 {
		cfg.Distractors = d.Distractors
	}
	switch {
	case cfg.N < 0:
		return nil, fmt.Errorf("data: shapes: N %d is negative", cfg.N)
	case cfg.Width < 8 || cfg.Height < 8 || cfg.Width > 8192 || cfg.Height > 8192:
		return nil, fmt.Errorf("data: shapes: image size %dx%d outside 8..8192", cfg.Width, cfg.Height)
	case cfg.MinObjects < 0 || cfg.MaxObjects < cfg.MinObjects:
		return nil, fmt.Errorf("data: shapes: objects per image %d..%d is not a range", cfg.MinObjects, cfg.MaxObjects)
	case cfg.MinSize < 4 || cfg.MaxSize < cfg.MinSize || cfg.MaxSize > min(cfg.Width, cfg.Height):
		return nil, fmt.Errorf("data: shapes: shape size %d..%d must be within 4..%d", cfg.MinSize, cfg.MaxSize, min(cfg.Width, cfg.Height))
	case !(cfg.MaxIoU > 0 && cfg.MaxIoU <= 1):
		return nil, fmt.Errorf("data: shapes: MaxIoU %g outside (0,1]", cfg.MaxIoU)
	case len(cfg.Classes) == 0:
		return nil, fmt.Errorf("data: shapes: no classes")
	}
	seen := map[string]bool{}
	for _, c := range cfg.Classes {
		switch c {
		case Rectangle, Ellipse, Triangle, Cross:
		default:
			return nil, fmt.Errorf("data: shapes: unknown class %q (have %s, %s, %s, %s)", c, Rectangle, Ellipse, Triangle, Cross)
		}
		if seen[c] {
			return nil, fmt.Errorf("data: shapes: class %q listed twice", c)
		}
		seen[c] = true
	}
	cfg.Classes = append([]string(nil), cfg.Classes...)
	return &ShapesDataset{cfg: cfg, names: cfg.Classes, classes: append([]string{Background}, cfg.Classes...)}, nil
}

// Config returns the configuration with defaults filled in.
func (d *ShapesDataset) Config() ShapesConfig { return d.cfg }

// Len is N.
func (d *ShapesDataset) Len() int { return d.cfg.N }

// Classes returns Background followed by the configured shapes.
func (d *ShapesDataset) Classes() []string { return append([]string(nil), d.classes...) }

// NumClasses is len(Classes()).
func (d *ShapesDataset) NumClasses() int { return len(d.classes) }

// Sample draws image i. Boxes are the tight boxes of the shapes' pixels
// (the whole shape, including any part a later shape covers).
func (d *ShapesDataset) Sample(i int) (Sample, error) {
	if i < 0 || i >= d.cfg.N {
		return Sample{}, fmt.Errorf("data: shapes index %d out of range [0,%d)", i, d.cfg.N)
	}
	rng := rand.New(rand.NewSource(mixSeed(d.cfg.Seed, 0x5ba9e5, int64(i))))
	c := d.cfg
	img := image.NewRGBA(image.Rect(0, 0, c.Width, c.Height))
	bg := background(img, rng, c.Noise)
	if c.Distractors > 0 {
		for range rng.Intn(c.Distractors + 1) {
			col := contrasting(rng, bg)
			x0, y0 := rng.Float64()*float64(c.Width), rng.Float64()*float64(c.Height)
			x1, y1 := rng.Float64()*float64(c.Width), rng.Float64()*float64(c.Height)
			line(img, x0, y0, x1, y1, 1+rng.Float64(), col)
		}
	}
	s := Sample{ID: fmt.Sprintf("shapes-%d", i), Image: img, Width: c.Width, Height: c.Height}
	n := c.MinObjects + rng.Intn(c.MaxObjects-c.MinObjects+1)
	var placed []box.Box
	for range n {
		cls := rng.Intn(len(d.names))
		var sh shape
		ok := false
		for range 20 { // placement attempts
			sh = newShape(d.names[cls], rng, c)
			if fits(sh.bounds(), placed, c.MaxIoU) {
				ok = true
				break
			}
		}
		if !ok {
			continue
		}
		b, drawn := sh.draw(img, contrasting(rng, bg))
		if !drawn {
			continue
		}
		placed = append(placed, sh.bounds())
		s.Boxes = append(s.Boxes, b)
		s.Labels = append(s.Labels, cls+1)
		s.Difficult = append(s.Difficult, false)
		s.Crowd = append(s.Crowd, false)
	}
	return s, nil
}

// mixSeed hashes its parts (splitmix64 steps) into one seed.
func mixSeed(parts ...int64) int64 {
	var h uint64 = 0x9e3779b97f4a7c15
	for _, p := range parts {
		h ^= uint64(p)
		h += 0x9e3779b97f4a7c15
		z := h
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		h = z ^ (z >> 31)
	}
	return int64(h & (1<<63 - 1))
}

func fits(b box.Box, placed []box.Box, maxIoU float64) bool {
	if len(placed) == 0 {
		return true
	}
	iou := box.IoU([]box.Box{b}, placed).Data()
	for j, v := range iou {
		p := placed[j]
		inside := (b.X1 >= p.X1 && b.Y1 >= p.Y1 && b.X2 <= p.X2 && b.Y2 <= p.Y2) ||
			(p.X1 >= b.X1 && p.Y1 >= b.Y1 && p.X2 <= b.X2 && p.Y2 <= b.Y2)
		if float64(v) > maxIoU || inside {
			return false
		}
	}
	return true
}

type rgb [3]float64

// background fills img with a gradient between two colours, a faint stripe
// texture and Gaussian noise; it returns the mean colour.
func background(img *image.RGBA, rng *rand.Rand, noise float64) rgb {
	a := rgb{rng.Float64() * 255, rng.Float64() * 255, rng.Float64() * 255}
	var b rgb
	for k := range b {
		b[k] = clamp255(a[k] + (rng.Float64()-0.5)*80)
	}
	angle := rng.Float64() * math.Pi
	dx, dy := math.Cos(angle), math.Sin(angle)
	freq := 0.05 + rng.Float64()*0.25
	amp := rng.Float64() * 10
	w, h := img.Rect.Dx(), img.Rect.Dy()
	diag := float64(w)*math.Abs(dx) + float64(h)*math.Abs(dy)
	lo := math.Min(0, float64(w)*dx) // the smallest projection
	if noise < 0 {
		noise = 0
	}
	for y := range h {
		for x := range w {
			t := (float64(x)*dx + float64(y)*dy - lo) / diag
			stripe := amp * math.Sin(freq*(float64(x)*dy-float64(y)*dx))
			n := rng.NormFloat64() * noise
			o := img.PixOffset(x, y)
			for k := range 3 {
				img.Pix[o+k] = uint8(clamp255(a[k]*(1-t) + b[k]*t + stripe + n))
			}
			img.Pix[o+3] = 0xff
		}
	}
	return rgb{(a[0] + b[0]) / 2, (a[1] + b[1]) / 2, (a[2] + b[2]) / 2}
}

// contrasting picks a random colour at least 90 levels (Euclidean) from bg.
func contrasting(rng *rand.Rand, bg rgb) [3]uint8 {
	var c rgb
	for range 50 {
		c = rgb{rng.Float64() * 255, rng.Float64() * 255, rng.Float64() * 255}
		d := math.Sqrt((c[0]-bg[0])*(c[0]-bg[0]) + (c[1]-bg[1])*(c[1]-bg[1]) + (c[2]-bg[2])*(c[2]-bg[2]))
		if d >= 90 {
			break
		}
	}
	return [3]uint8{uint8(c[0]), uint8(c[1]), uint8(c[2])}
}

func clamp255(v float64) float64 { return math.Max(0, math.Min(255, math.Round(v))) }

func set(img *image.RGBA, x, y int, c [3]uint8) {
	o := img.PixOffset(x, y)
	img.Pix[o], img.Pix[o+1], img.Pix[o+2], img.Pix[o+3] = c[0], c[1], c[2], 0xff
}

// line draws a segment of the given width (pixels whose centre is within
// width/2 of it).
func line(img *image.RGBA, x0, y0, x1, y1, width float64, c [3]uint8) {
	r := width / 2
	minX, maxX := int(math.Floor(math.Min(x0, x1)-r)), int(math.Ceil(math.Max(x0, x1)+r))
	minY, maxY := int(math.Floor(math.Min(y0, y1)-r)), int(math.Ceil(math.Max(y0, y1)+r))
	b := img.Rect
	dx, dy := x1-x0, y1-y0
	l2 := dx*dx + dy*dy
	for y := max(minY, b.Min.Y); y < min(maxY, b.Max.Y); y++ {
		for x := max(minX, b.Min.X); x < min(maxX, b.Max.X); x++ {
			px, py := float64(x)+0.5, float64(y)+0.5
			t := 0.0
			if l2 > 0 {
				t = math.Max(0, math.Min(1, ((px-x0)*dx+(py-y0)*dy)/l2))
			}
			ex, ey := px-(x0+t*dx), py-(y0+t*dy)
			if ex*ex+ey*ey <= r*r {
				set(img, x, y, c)
			}
		}
	}
}

// shape is one drawable object in a pixel rectangle [x0,x1) x [y0,y1).
type shape struct {
	kind           string
	x0, y0, x1, y1 int
	orient         int // triangle: which side is the base; cross: arm thickness ratio
	thick          float64
}

func newShape(kind string, rng *rand.Rand, c ShapesConfig) shape {
	long := c.MinSize + rng.Intn(c.MaxSize-c.MinSize+1)
	aspect := math.Exp((rng.Float64()*2 - 1) * math.Log(2.5)) // w/h in [0.4, 2.5]
	w, h := long, int(math.Round(float64(long)/aspect))
	if aspect < 1 {
		w, h = int(math.Round(float64(long)*aspect)), long
	}
	w, h = max(w, 4), max(h, 4)
	x0 := rng.Intn(max(1, c.Width-w+1))
	y0 := rng.Intn(max(1, c.Height-h+1))
	return shape{kind: kind, x0: x0, y0: y0, x1: min(c.Width, x0+w), y1: min(c.Height, y0+h),
		orient: rng.Intn(4), thick: 0.25 + rng.Float64()*0.15}
}

func (s shape) bounds() box.Box {
	return box.Box{X1: float32(s.x0), Y1: float32(s.y0), X2: float32(s.x1), Y2: float32(s.y1)}
}

// inside reports whether the pixel centre (px, py) is in the shape.
func (s shape) inside(px, py float64) bool {
	x0, y0, x1, y1 := float64(s.x0), float64(s.y0), float64(s.x1), float64(s.y1)
	w, h := x1-x0, y1-y0
	switch s.kind {
	case Rectangle:
		return true
	case Ellipse:
		u, v := (px-(x0+w/2))/(w/2), (py-(y0+h/2))/(h/2)
		return u*u+v*v <= 1
	case Triangle:
		u, v := (px-x0)/w, (py-y0)/h // in [0,1]^2
		switch s.orient {            // apex opposite the base
		case 0: // base at the bottom
			return v >= 2*math.Abs(u-0.5)
		case 1: // base at the top
			return 1-v >= 2*math.Abs(u-0.5)
		case 2: // base on the left
			return 1-u >= 2*math.Abs(v-0.5)
		default: // base on the right
			return u >= 2*math.Abs(v-0.5)
		}
	case Cross:
		u, v := (px-x0)/w, (py-y0)/h
		t := s.thick / 2
		return math.Abs(u-0.5) <= t || math.Abs(v-0.5) <= t
	}
	return false
}

// draw fills the shape and returns the tight box of the pixels it set.
func (s shape) draw(img *image.RGBA, c [3]uint8) (box.Box, bool) {
	minX, minY, maxX, maxY := s.x1, s.y1, s.x0-1, s.y0-1
	for y := s.y0; y < s.y1; y++ {
		for x := s.x0; x < s.x1; x++ {
			if s.inside(float64(x)+0.5, float64(y)+0.5) {
				set(img, x, y, c)
				minX, minY, maxX, maxY = min(minX, x), min(minY, y), max(maxX, x), max(maxY, y)
			}
		}
	}
	if maxX < minX || maxY < minY {
		return box.Box{}, false
	}
	return box.Box{X1: float32(minX), Y1: float32(minY), X2: float32(maxX + 1), Y2: float32(maxY + 1)}, true
}
