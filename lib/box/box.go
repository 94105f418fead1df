package box

import (
	"errors"
	"fmt"

	"github.com/detlab/detlab/lib/tensor"
)

// ErrInput reports input that box operations cannot use: mismatched lengths,
// a wrong tensor shape, NaN where a number is needed.
var ErrInput = errors.New("box: invalid input")

// Box is an axis-aligned rectangle (X1, Y1) - (X2, Y2) in continuous pixel
// coordinates, as torchvision's (x1, y1, x2, y2) rows. A box with X2 <= X1
// or Y2 <= Y1 is degenerate; its width or height is zero or negative.
type Box struct {
	X1, Y1, X2, Y2 float32
}

// New returns the box (x1, y1) - (x2, y2).
func New(x1, y1, x2, y2 float32) Box { return Box{X1: x1, Y1: y1, X2: x2, Y2: y2} }

// Width returns X2 - X1 (no +1).
func (b Box) Width() float32 { return b.X2 - b.X1 }

// Height returns Y2 - Y1 (no +1).
func (b Box) Height() float32 { return b.Y2 - b.Y1 }

// Area returns (X2 - X1) * (Y2 - Y1) in float32, as torchvision's box_area.
// A degenerate box may have a zero or negative area.
func (b Box) Area() float32 { return float32((b.X2 - b.X1) * (b.Y2 - b.Y1)) }

// HasNaN reports whether a coordinate is NaN.
func (b Box) HasNaN() bool { return b.X1 != b.X1 || b.Y1 != b.Y1 || b.X2 != b.X2 || b.Y2 != b.Y2 }

// String prints the box as [x1 y1 x2 y2].
func (b Box) String() string { return fmt.Sprintf("[%g %g %g %g]", b.X1, b.Y1, b.X2, b.Y2) }

// FromSlice reads boxes from a flat slice of 4*N floats (row-major (N,4)).
func FromSlice(data []float32) ([]Box, error) {
	if len(data)%4 != 0 {
		return nil, fmt.Errorf("%w: %d values are not a multiple of 4", ErrInput, len(data))
	}
	out := make([]Box, len(data)/4)
	for i := range out {
		out[i] = Box{data[4*i], data[4*i+1], data[4*i+2], data[4*i+3]}
	}
	return out, nil
}

// FromTensor reads an (N,4) tensor as N boxes.
func FromTensor(t *tensor.Tensor) ([]Box, error) {
	if t == nil {
		return nil, fmt.Errorf("%w: nil tensor", ErrInput)
	}
	s := t.Shape()
	if len(s) != 2 || s[1] != 4 {
		return nil, fmt.Errorf("%w: boxes tensor has shape %v, want (N,4)", ErrInput, s)
	}
	return FromSlice(t.Data())
}

// Flatten returns the boxes as a flat slice of 4*N floats (row-major (N,4)).
func Flatten(boxes []Box) []float32 {
	return AppendFlatten(make([]float32, 0, 4*len(boxes)), boxes)
}

// AppendFlatten is Flatten appending to dst, for callers that reuse their
// memory.
func AppendFlatten(dst []float32, boxes []Box) []float32 {
	for _, b := range boxes {
		dst = append(dst, b.X1, b.Y1, b.X2, b.Y2)
	}
	return dst
}

// ToTensor returns the boxes as an (N,4) tensor.
func ToTensor(boxes []Box) *tensor.Tensor {
	return tensor.MustFromSlice(Flatten(boxes), len(boxes), 4)
}

// Select returns boxes[idx[0]], boxes[idx[1]], ... as a new slice. It panics
// on an index out of range, like a slice expression.
func Select(boxes []Box, idx []int) []Box {
	out := make([]Box, len(idx))
	for i, j := range idx {
		out[i] = boxes[j]
	}
	return out
}

// IoU returns the (len(a), len(b)) matrix of intersection over union, as
// torchvision.ops.box_iou: inter = max(min(x2)-max(x1), 0) * max(min(y2)-max(y1), 0),
// union = area(a) + area(b) - inter, iou = inter / union, all in float32.
// Two empty boxes give 0/0 = NaN, as in torchvision.
func IoU(a, b []Box) *tensor.Tensor {
	out := tensor.New(len(a), len(b))
	d := out.Data()
	areaB := make([]float32, len(b))
	for j, bb := range b {
		areaB[j] = bb.Area()
	}
	for i, ba := range a {
		aa := ba.Area()
		row := d[i*len(b) : (i+1)*len(b)]
		for j, bb := range b {
			row[j] = iou(ba, aa, bb, areaB[j])
		}
	}
	return out
}

// iou is torchvision's box_iou for one pair, with the areas precomputed.
// The same float32 steps serve the NMS kernel (which orders them identically).
func iou(a Box, areaA float32, b Box, areaB float32) float32 {
	w := min32(a.X2, b.X2) - max32(a.X1, b.X1)
	h := min32(a.Y2, b.Y2) - max32(a.Y1, b.Y1)
	if w < 0 {
		w = 0
	}
	if h < 0 {
		h = 0
	}
	inter := float32(w * h)
	union := float32(areaA+areaB) - inter
	return inter / union
}

// max32 and min32 follow torch.max/min of two tensors closely enough for
// finite inputs: the second operand wins ties (which are equal anyway).
func max32(a, b float32) float32 {
	if b > a {
		return b
	}
	return a
}

func min32(a, b float32) float32 {
	if b < a {
		return b
	}
	return a
}

// ClipToImage returns copies of the boxes with x clamped to [0, width] and y
// to [0, height], as torchvision.ops.clip_boxes_to_image with size
// (height, width). NaN coordinates stay NaN.
func ClipToImage(boxes []Box, height, width int) []Box {
	out := make([]Box, len(boxes))
	for i, b := range boxes {
		out[i] = b.Clip(height, width)
	}
	return out
}

// Clip returns b with x clamped to [0, width] and y to [0, height], as
// ClipToImage clips each box. NaN coordinates stay NaN.
func (b Box) Clip(height, width int) Box {
	w, h := float32(width), float32(height)
	return Box{clamp(b.X1, w), clamp(b.Y1, h), clamp(b.X2, w), clamp(b.Y2, h)}
}

func clamp(v, hi float32) float32 {
	if v < 0 {
		return 0
	}
	if v > hi {
		return hi
	}
	return v
}

// RemoveSmall returns the indices, ascending, of the boxes whose width and
// height are both at least minSize, as torchvision.ops.remove_small_boxes:
// widths in float32 compared with float32(minSize). Boxes with a NaN
// coordinate are removed.
func RemoveSmall(boxes []Box, minSize float64) []int {
	return AppendRemoveSmall(make([]int, 0, len(boxes)), boxes, minSize)
}

// AppendRemoveSmall is RemoveSmall appending the kept indices to dst, for
// callers that reuse their memory.
func AppendRemoveSmall(dst []int, boxes []Box, minSize float64) []int {
	m := float32(minSize)
	for i, b := range boxes {
		if b.Width() >= m && b.Height() >= m {
			dst = append(dst, i)
		}
	}
	return dst
}

func isNaN32(v float32) bool { return v != v }
