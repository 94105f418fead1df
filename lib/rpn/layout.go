package rpn

import (
	"fmt"
	"slices"

	"github.com/detlab/detlab/lib/tensor"
)

// FlatIndex returns, for one image of a head output with k values per anchor
// laid out as (k*A, H, W) (k = 1 for objectness, 4 for deltas), the source
// offset of every value in the flattened (H, W, A, k) order the anchors use:
// dst[((y*W+x)*A+a)*k+j] = src[((a*k+j)*H+y)*W+x]. It is the permutation of
// torchvision's concat_box_prediction_layers, for gathering values and
// scattering gradients.
func FlatIndex(k, a, h, w int) []int {
	out := make([]int, k*a*h*w)
	i := 0
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			for ai := 0; ai < a; ai++ {
				for j := 0; j < k; j++ {
					out[i] = ((ai*k+j)*h+y)*w + x
					i++
				}
			}
		}
	}
	return out
}

// FlattenPredictions reorders the RPN head outputs of every feature level,
// objectness (N,A,H,W) and deltas (N,4A,H,W), into the anchor order and
// concatenates the levels: objectness (N, total) and deltas (N, total, 4),
// total = sum of H*W*A over levels, as concat_box_prediction_layers.
func FlattenPredictions(objectness, deltas []*tensor.Tensor) (obj, del *tensor.Tensor, err error) {
	od, dd, n, total, err := FlattenPredictionsTo(nil, nil, objectness, deltas)
	if err != nil {
		return nil, nil, err
	}
	return tensor.MustFromSlice(od, n, total), tensor.MustFromSlice(dd, n, total, 4), nil
}

// FlattenPredictionsTo is FlattenPredictions into the memory of objBuf and
// delBuf (grown when short), for callers that reuse it every step: it
// returns the objectness (N, total) and deltas (N, total, 4) row-major,
// with N and total.
func FlattenPredictionsTo(objBuf, delBuf []float32, objectness, deltas []*tensor.Tensor) (obj, del []float32, n, total int, err error) {
	if len(objectness) == 0 || len(objectness) != len(deltas) {
		return nil, nil, 0, 0, fmt.Errorf("%w: %d objectness and %d delta levels", ErrInput, len(objectness), len(deltas))
	}
	n = -1
	for l := range objectness {
		o, d := objectness[l], deltas[l]
		if o == nil || d == nil || o.Dims() != 4 || d.Dims() != 4 {
			return nil, nil, 0, 0, fmt.Errorf("%w: level %d: objectness and deltas must be 4-d (N,A,H,W) and (N,4A,H,W)", ErrInput, l)
		}
		os, ds := o.Shape(), d.Shape()
		if ds[0] != os[0] || ds[1] != 4*os[1] || ds[2] != os[2] || ds[3] != os[3] {
			return nil, nil, 0, 0, fmt.Errorf("%w: level %d: deltas %v do not match objectness %v", ErrInput, l, ds, os)
		}
		if n >= 0 && os[0] != n {
			return nil, nil, 0, 0, fmt.Errorf("%w: level %d has batch %d, level 0 has %d", ErrInput, l, os[0], n)
		}
		n = os[0]
		total += os[1] * os[2] * os[3]
	}
	// Every element is written below.
	od := slices.Grow(objBuf[:0], n*total)[:n*total]
	dd := slices.Grow(delBuf[:0], 4*n*total)[:4*n*total]
	start := 0
	for l := range objectness {
		s := objectness[l].Shape()
		a, h, w := s[1], s[2], s[3]
		size := a * h * w
		// The FlatIndex permutation, walked directly (no index arrays):
		// output (y, x, anchor[, coordinate]) reads input ((anchor*k +
		// coordinate)*h + y)*w + x.
		hw := h * w
		for img := 0; img < n; img++ {
			src := objectness[l].Data()[img*size : (img+1)*size]
			dst := od[img*total+start : img*total+start+size]
			srcD := deltas[l].Data()[img*4*size : (img+1)*4*size]
			dstD := dd[4*(img*total+start) : 4*(img*total+start+size)]
			i := 0
			for p := range hw { // p = y*w + x
				for ai := range a {
					dst[i] = src[ai*hw+p]
					q := 4 * ai * hw
					dstD[4*i] = srcD[q+p]
					dstD[4*i+1] = srcD[q+hw+p]
					dstD[4*i+2] = srcD[q+2*hw+p]
					dstD[4*i+3] = srcD[q+3*hw+p]
					i++
				}
			}
		}
		start += size
	}
	return od, dd, n, total, nil
}
