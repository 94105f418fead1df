package box

import (
	"fmt"
	"math"
	"slices"
)

// DefaultXformClip is torchvision's bbox_xform_clip, log(1000/16): decoded
// dw and dh are clamped from above at this value so exp does not overflow.
var DefaultXformClip = math.Log(1000.0 / 16)

// Coder encodes boxes as regression deltas relative to reference boxes and
// decodes them back, as torchvision's det_utils.BoxCoder. The RPN uses
// weights (1,1,1,1) and the box head (10,10,5,5).
//
// Deltas are flat float32 slices laid out as torchvision's (N, 4*K) rows:
// delta k of box i is (dx, dy, dw, dh) at [4*(i*K+k) : 4*(i*K+k)+4].
type Coder struct {
	// Weights (wx, wy, ww, wh) scale the deltas; they are used as float32.
	Weights [4]float64
	// XformClip clamps dw and dh from above when decoding; zero means
	// DefaultXformClip.
	XformClip float64
}

// NewCoder returns a Coder with the given weights and the default clip.
func NewCoder(wx, wy, ww, wh float64) Coder {
	return Coder{Weights: [4]float64{wx, wy, ww, wh}, XformClip: DefaultXformClip}
}

func (c Coder) clip() float32 {
	if c.XformClip == 0 {
		return float32(DefaultXformClip)
	}
	return float32(c.XformClip)
}

// Encode returns the deltas (4 per box) that turn each proposal into its
// reference box, as BoxCoder.encode_single(reference, proposals):
// dx = wx*(gcx-pcx)/pw, dy = wy*(gcy-pcy)/ph, dw = ww*log(gw/pw),
// dh = wh*log(gh/ph), with w = x2-x1 and cx = x1 + 0.5*w, in float32.
// A zero-width reference gives -Inf, as in torchvision.
func (c Coder) Encode(reference, proposals []Box) ([]float32, error) {
	return c.AppendEncode(nil, reference, proposals)
}

// AppendEncode is Encode appending the deltas to dst (a new slice when dst
// is nil), for callers that reuse their memory.
func (c Coder) AppendEncode(dst []float32, reference, proposals []Box) ([]float32, error) {
	if len(reference) != len(proposals) {
		return nil, fmt.Errorf("%w: encode got %d reference boxes and %d proposals", ErrInput, len(reference), len(proposals))
	}
	wx, wy := float32(c.Weights[0]), float32(c.Weights[1])
	ww, wh := float32(c.Weights[2]), float32(c.Weights[3])
	start := len(dst)
	dst = slices.Grow(dst, 4*len(proposals))[:start+4*len(proposals)]
	out := dst[start:]
	for i, p := range proposals {
		g := reference[i]
		pw, ph := p.X2-p.X1, p.Y2-p.Y1
		pcx, pcy := p.X1+float32(0.5*pw), p.Y1+float32(0.5*ph)
		gw, gh := g.X2-g.X1, g.Y2-g.Y1
		gcx, gcy := g.X1+float32(0.5*gw), g.Y1+float32(0.5*gh)
		out[4*i] = float32(wx*(gcx-pcx)) / pw
		out[4*i+1] = float32(wy*(gcy-pcy)) / ph
		out[4*i+2] = float32(ww * log32(gw/pw))
		out[4*i+3] = float32(wh * log32(gh/ph))
	}
	return dst, nil
}

// Decode applies deltas to boxes, as BoxCoder.decode: deltas holds K sets of
// 4 per box (len(deltas) = 4*K*len(boxes)) and the result holds K boxes per
// input box, box i's k-th at index i*K+k. dx = c0/wx, dy = c1/wy,
// dw = min(c2/ww, clip), dh = min(c3/wh, clip) (no lower clamp),
// cx = dx*w + x1 + 0.5*w, pw = exp(dw)*w, box = (cx - 0.5*pw, ..., cx + 0.5*pw, ...).
func (c Coder) Decode(deltas []float32, boxes []Box) ([]Box, error) {
	if len(boxes) == 0 {
		if len(deltas) != 0 {
			return nil, fmt.Errorf("%w: decode got %d deltas for no boxes", ErrInput, len(deltas))
		}
		return []Box{}, nil
	}
	if len(deltas)%(4*len(boxes)) != 0 {
		return nil, fmt.Errorf("%w: decode got %d deltas for %d boxes (want a multiple of 4 per box)", ErrInput, len(deltas), len(boxes))
	}
	k := len(deltas) / (4 * len(boxes))
	out := make([]Box, k*len(boxes))
	for i, b := range boxes {
		for j := 0; j < k; j++ {
			out[i*k+j] = c.decodeOne(deltas[4*(i*k+j):4*(i*k+j)+4], b)
		}
	}
	return out, nil
}

// DecodeOne applies one set of 4 deltas to one box.
func (c Coder) DecodeOne(d [4]float32, b Box) Box { return c.decodeOne(d[:], b) }

func (c Coder) decodeOne(d []float32, b Box) Box {
	clip := c.clip()
	w, h := b.X2-b.X1, b.Y2-b.Y1
	cx, cy := b.X1+float32(0.5*w), b.Y1+float32(0.5*h)
	dx := d[0] / float32(c.Weights[0])
	dy := d[1] / float32(c.Weights[1])
	dw := d[2] / float32(c.Weights[2])
	dh := d[3] / float32(c.Weights[3])
	if dw > clip {
		dw = clip
	}
	if dh > clip {
		dh = clip
	}
	pcx := float32(dx*w) + cx
	pcy := float32(dy*h) + cy
	pw := float32(exp32(dw) * w)
	ph := float32(exp32(dh) * h)
	hw, hh := float32(0.5*pw), float32(0.5*ph)
	return Box{pcx - hw, pcy - hh, pcx + hw, pcy + hh}
}

// log32 and exp32 are float32 log and exp, correctly rounded from float64
// (torch's float32 kernels are within an ulp of these).
func log32(x float32) float32 { return float32(math.Log(float64(x))) }
func exp32(x float32) float32 { return float32(math.Exp(float64(x))) }
