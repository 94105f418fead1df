package anchor

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/detlab/detlab/lib/box"
	"github.com/detlab/detlab/lib/transform"
)

// Matcher thresholds of torchvision's RPN (fg_iou_thresh, bg_iou_thresh):
// an anchor whose IoU with a ground-truth box reaches PositiveIoU is a
// positive for it; one below NegativeIoU for every box is a negative.
// (The RPN also keeps each box's best anchor as a positive whatever its
// IoU, allow_low_quality_matches, so a box under 0.7 still gets one,
// poorly fitting, anchor.)
const (
	PositiveIoU = 0.7
	NegativeIoU = 0.3
)

// SizeDivisible is the multiple torchvision pads each batch to; Analyze
// lays the anchor grid over each image padded so.
const SizeDivisible = 32

// ImageBoxes is one image's ground truth: its size in pixels and its boxes
// (x1, y1, x2, y2), with optional class labels (nil, or one per box).
type ImageBoxes struct {
	Height, Width int
	Boxes         []box.Box
	Labels        []int
}

// Resize returns the images and boxes as the detector sees them after
// torchvision's GeneralizedRCNNTransform resize in evaluation: scale =
// min(minSize/shorter side, maxSize/longer side) (transform.Scale), the
// size floor(side*scale) (transform.ResizedSize) and the boxes rescaled by
// the per-axis size ratios (transform.ResizeBoxes). Pass the dataset's
// original sizes and boxes; the result goes to Analyze or KMeans.
func Resize(images []ImageBoxes, minSize, maxSize int) ([]ImageBoxes, error) {
	if minSize <= 0 || maxSize <= 0 {
		return nil, fmt.Errorf("%w: min size %d and max size %d must be positive", ErrConfig, minSize, maxSize)
	}
	out := make([]ImageBoxes, len(images))
	for i, im := range images {
		if err := im.check(); err != nil {
			return nil, fmt.Errorf("anchor: image %d: %w", i, err)
		}
		to := transform.ResizedSize(im.Height, im.Width, transform.Scale(im.Height, im.Width, minSize, maxSize))
		if to.H <= 0 || to.W <= 0 {
			return nil, fmt.Errorf("%w: image %d (%dx%d) resizes to %v", ErrConfig, i, im.Height, im.Width, to)
		}
		rh := float32(to.H) / float32(im.Height)
		rw := float32(to.W) / float32(im.Width)
		bs := make([]box.Box, len(im.Boxes))
		for j, b := range im.Boxes {
			bs[j] = box.Box{X1: b.X1 * rw, Y1: b.Y1 * rh, X2: b.X2 * rw, Y2: b.Y2 * rh}
		}
		out[i] = ImageBoxes{Height: to.H, Width: to.W, Boxes: bs, Labels: append([]int(nil), im.Labels...)}
	}
	return out, nil
}

func (im ImageBoxes) check() error {
	if im.Height <= 0 || im.Width <= 0 {
		return fmt.Errorf("%w: image size %dx%d", ErrConfig, im.Height, im.Width)
	}
	if im.Labels != nil && len(im.Labels) != len(im.Boxes) {
		return fmt.Errorf("%w: %d labels for %d boxes", ErrConfig, len(im.Labels), len(im.Boxes))
	}
	for j, b := range im.Boxes {
		if b.HasNaN() || math.IsInf(float64(b.X1+b.Y1+b.X2+b.Y2), 0) {
			return fmt.Errorf("%w: box %d is not finite: %v", ErrConfig, j, b)
		}
		if b.X2 <= b.X1 || b.Y2 <= b.Y1 {
			return fmt.Errorf("%w: box %d is degenerate: %v", ErrConfig, j, b)
		}
	}
	return nil
}

// Coverage is how well an anchor configuration fits a set of ground-truth
// boxes: each box's best IoU with any anchor of its image.
type Coverage struct {
	// Config and Stride are the anchors analysed.
	Config Config
	Stride int
	// BestIoU holds each box's best anchor IoU, image by image in input
	// order; Labels (0 where none was given), Widths and Heights the boxes'
	// labels and sizes (in the pixels analysed).
	BestIoU         []float64
	Labels          []int
	Widths, Heights []float64
}

// Analyze computes each box's best IoU with the anchors the RPN would lay
// over its image: every image padded to a multiple of SizeDivisible, a
// feature grid of ceil(padded/stride) cells (the conv arithmetic of a
// stride-32 ResNet body), the cell anchors of cfg shifted by the stride as
// GridAnchors does. Boxes should be in the resized pixels (see Resize).
// The best grid position per anchor shape is found exactly (IoU of equal
// shapes falls with the offset on each axis), not by brute force.
func Analyze(images []ImageBoxes, cfg Config, stride int) (*Coverage, error) {
	if stride <= 0 {
		return nil, fmt.Errorf("%w: stride %d", ErrConfig, stride)
	}
	cell, err := CellAnchors(cfg)
	if err != nil {
		return nil, err
	}
	c := &Coverage{Config: Config{Sizes: append([]float64(nil), cfg.Sizes...), AspectRatios: append([]float64(nil), cfg.AspectRatios...)}, Stride: stride}
	for i, im := range images {
		if err := im.check(); err != nil {
			return nil, fmt.Errorf("anchor: image %d: %w", i, err)
		}
		padH := (im.Height + SizeDivisible - 1) / SizeDivisible * SizeDivisible
		padW := (im.Width + SizeDivisible - 1) / SizeDivisible * SizeDivisible
		fh, fw := (padH+stride-1)/stride, (padW+stride-1)/stride
		sy, sx := padH/fh, padW/fw
		for j, b := range im.Boxes {
			best := 0.0
			for _, a := range cell {
				x := bestShift(float64(b.X1+b.X2)/2, float64(a.X1+a.X2)/2, sx, fw)
				y := bestShift(float64(b.Y1+b.Y2)/2, float64(a.Y1+a.Y2)/2, sy, fh)
				for _, gx := range x {
					for _, gy := range y {
						ab := box.Box{X1: a.X1 + float32(gx*sx), Y1: a.Y1 + float32(gy*sy), X2: a.X2 + float32(gx*sx), Y2: a.Y2 + float32(gy*sy)}
						best = math.Max(best, iou(ab, b))
					}
				}
			}
			l := 0
			if im.Labels != nil {
				l = im.Labels[j]
			}
			c.BestIoU = append(c.BestIoU, best)
			c.Labels = append(c.Labels, l)
			c.Widths = append(c.Widths, float64(b.X2-b.X1))
			c.Heights = append(c.Heights, float64(b.Y2-b.Y1))
		}
	}
	return c, nil
}

// bestShift returns the (at most two) grid indices in [0, n) whose anchor
// centre, centre + g*s, lies nearest target on either side.
func bestShift(target, centre float64, s, n int) []int {
	g := int(math.Floor((target - centre) / float64(s)))
	lo := min(max(g, 0), n-1)
	hi := min(max(g+1, 0), n-1)
	if lo == hi {
		return []int{lo}
	}
	return []int{lo, hi}
}

// iou is the IoU of two boxes in float64 (box.IoU's formula, no +1).
func iou(a, b box.Box) float64 {
	iw := math.Min(float64(a.X2), float64(b.X2)) - math.Max(float64(a.X1), float64(b.X1))
	ih := math.Min(float64(a.Y2), float64(b.Y2)) - math.Max(float64(a.Y1), float64(b.Y1))
	if iw <= 0 || ih <= 0 {
		return 0
	}
	inter := iw * ih
	aa := float64(a.X2-a.X1) * float64(a.Y2-a.Y1)
	ba := float64(b.X2-b.X1) * float64(b.Y2-b.Y1)
	return inter / (aa + ba - inter)
}

// Len is the number of boxes analysed.
func (c *Coverage) Len() int { return len(c.BestIoU) }

// Fraction returns the fraction of boxes whose best anchor IoU is at least
// thresh (NaN when there are no boxes).
func (c *Coverage) Fraction(thresh float64) float64 {
	if len(c.BestIoU) == 0 {
		return math.NaN()
	}
	n := 0
	for _, v := range c.BestIoU {
		if v >= thresh {
			n++
		}
	}
	return float64(n) / float64(len(c.BestIoU))
}

// Median returns the median best IoU (NaN when there are no boxes).
func (c *Coverage) Median() float64 {
	if len(c.BestIoU) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), c.BestIoU...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// Class returns the coverage of the boxes labelled label only.
func (c *Coverage) Class(label int) *Coverage {
	out := &Coverage{Config: c.Config, Stride: c.Stride}
	for i, l := range c.Labels {
		if l == label {
			out.BestIoU = append(out.BestIoU, c.BestIoU[i])
			out.Labels = append(out.Labels, l)
			out.Widths = append(out.Widths, c.Widths[i])
			out.Heights = append(out.Heights, c.Heights[i])
		}
	}
	return out
}

// String is one line: the configuration, the number of boxes and the
// fractions clearing 0.7, 0.5 and 0.3.
func (c *Coverage) String() string {
	return fmt.Sprintf("%s: %d boxes, best IoU >= 0.7: %.1f%%, >= 0.5: %.1f%%, >= 0.3: %.1f%%, median %.2f",
		c.Config, c.Len(), 100*c.Fraction(PositiveIoU), 100*c.Fraction(0.5), 100*c.Fraction(NegativeIoU), c.Median())
}

// String writes the configuration as "sizes (32, 64) x ratios (0.5, 1, 2)".
func (c Config) String() string {
	return fmt.Sprintf("sizes (%s) x ratios (%s)", joinFloats(c.Sizes), joinFloats(c.AspectRatios))
}

func joinFloats(v []float64) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprintf("%g", x)
	}
	return strings.Join(s, ", ")
}

// Comparison sets two coverages of the same boxes side by side.
type Comparison struct {
	NameA, NameB string
	A, B         *Coverage
}

// Compare returns the comparison of two coverages (names "A" and "B" unless
// set in the result).
func Compare(a, b *Coverage) Comparison {
	return Comparison{NameA: "A", NameB: "B", A: a, B: b}
}

// String is one line: each configuration's fractions at 0.7 and 0.5 and
// the change in percentage points.
func (c Comparison) String() string {
	if c.A == nil || c.B == nil {
		return "anchor comparison: missing coverage"
	}
	a7, b7 := c.A.Fraction(PositiveIoU), c.B.Fraction(PositiveIoU)
	a5, b5 := c.A.Fraction(0.5), c.B.Fraction(0.5)
	return fmt.Sprintf("IoU>=0.7: %s %.1f%% -> %s %.1f%% (%+.1f pp); IoU>=0.5: %.1f%% -> %.1f%% (%+.1f pp); %d vs %d boxes; %s: %s, %s: %s",
		c.NameA, 100*a7, c.NameB, 100*b7, 100*(b7-a7), 100*a5, 100*b5, 100*(b5-a5), c.A.Len(), c.B.Len(), c.NameA, c.A.Config, c.NameB, c.B.Config)
}
