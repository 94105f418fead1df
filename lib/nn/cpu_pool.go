package nn

import (
	"math"

	"github.com/detlab/detlab/lib/internal/freelist"
)

// MaxPool2d implements Backend.
func (CPU) MaxPool2d(geo PoolGeom, x, y []float32, arg []int32) {
	hw, ohw := geo.H*geo.W, geo.OH*geo.OW
	if arg == nil && geo.KH == 3 && geo.KW == 3 && geo.SH == 2 && geo.SW == 2 && geo.PH == 1 && geo.PW == 1 {
		// ResNet's stem pooling, inference: separable, see maxPool3s2Job.
		runPooled(geo.Planes, &maxPool3s2Jobs, maxPool3s2Job{geo: geo, x: x[:geo.Planes*hw], y: y[:geo.Planes*ohw]})
		return
	}
	runPooled(geo.Planes, &maxPoolJobs, maxPoolJob{geo: geo, x: x, y: y, arg: arg})
}

// maxPoolJob is MaxPool2d's general path over planes [p0, p1).
type maxPoolJob struct {
	geo  PoolGeom
	x, y []float32
	arg  []int32
}

var maxPoolJobs freelist.List[maxPoolJob]

func (j *maxPoolJob) run(p0, p1 int) {
	geo, x, y, arg := j.geo, j.x, j.y, j.arg
	hw, ohw := geo.H*geo.W, geo.OH*geo.OW
	for p := p0; p < p1; p++ {
		plane := x[p*hw : (p+1)*hw]
		for oh := 0; oh < geo.OH; oh++ {
			h0 := oh*geo.SH - geo.PH
			hs, he := max(h0, 0), min(h0+geo.KH, geo.H)
			for ow := 0; ow < geo.OW; ow++ {
				w0 := ow*geo.SW - geo.PW
				ws, we := max(w0, 0), min(w0+geo.KW, geo.W)
				best := float32(math.Inf(-1))
				bi := hs*geo.W + ws
			window:
				for ih := hs; ih < he; ih++ {
					for iw := ws; iw < we; iw++ {
						v := plane[ih*geo.W+iw]
						if v > best || v != v {
							best, bi = v, ih*geo.W+iw
							if v != v {
								break window
							}
						}
					}
				}
				o := p*ohw + oh*geo.OW + ow
				y[o] = best
				if arg != nil {
					arg[o] = int32(bi)
				}
			}
		}
	}
}

// MaxPool2dBackward implements Backend.
func (CPU) MaxPool2dBackward(geo PoolGeom, dy, dx []float32, arg []int32) {
	hw, ohw := geo.H*geo.W, geo.OH*geo.OW
	runPooled(geo.Planes, &maxPoolBackJobs, maxPoolBackJob{hw: hw, ohw: ohw, dy: dy, dx: dx, arg: arg})
}

// maxPoolBackJob is MaxPool2dBackward over planes [p0, p1).
type maxPoolBackJob struct {
	hw, ohw int
	dy, dx  []float32
	arg     []int32
}

var maxPoolBackJobs freelist.List[maxPoolBackJob]

func (j *maxPoolBackJob) run(p0, p1 int) {
	hw, ohw := j.hw, j.ohw
	for p := p0; p < p1; p++ {
		d := j.dx[p*hw : (p+1)*hw]
		for i, g := range j.dy[p*ohw : (p+1)*ohw] {
			d[j.arg[p*ohw+i]] += g
		}
	}
}

// AdaptiveAvgPool2d1 is torch.nn.AdaptiveAvgPool2d((1, 1)): the mean of
// each channel plane, shape (N,C,1,1).
type AdaptiveAvgPool2d1 struct{}

// maxPool3s2 pools one plane with a 3x3 window, stride 2, padding 1 (the
// padding never wins) in two separable passes: the maximum of each
// window's three columns per input row into hm (H x OW), then of three
// rows of hm. The values equal the row-major window scan's (the builtin
// max propagates NaN; a tie of +0 and -0 may keep the other zero); the
// position of the maximum, which only training needs, is not computed.
func maxPool3s2(geo PoolGeom, plane, out, hm []float32) {
	w, ow := geo.W, geo.OW
	for r := 0; r < geo.H; r++ {
		src := plane[r*w : (r+1)*w]
		dst := hm[r*ow : (r+1)*ow]
		// Column 2j is inside the row for every output j; 2j-1 is
		// padding for j = 0 and 2j+1 may be past the end for the last.
		dst[0] = src[0]
		if w > 1 {
			dst[0] = max(src[0], src[1])
		}
		j := 1
		for ; j < ow && 2*j+1 < w; j++ {
			c := src[2*j-1 : 2*j+2 : 2*j+2]
			dst[j] = max(max(c[0], c[1]), c[2])
		}
		for ; j < ow; j++ {
			dst[j] = max(src[2*j-1], src[2*j])
		}
	}
	for oh := 0; oh < geo.OH; oh++ {
		dst := out[oh*ow : (oh+1)*ow]
		mid := hm[2*oh*ow : (2*oh+1)*ow]
		copy(dst, mid)
		if oh > 0 {
			up := hm[(2*oh-1)*ow : 2*oh*ow]
			for j, v := range up {
				dst[j] = max(v, dst[j])
			}
		}
		if 2*oh+1 < geo.H {
			down := hm[(2*oh+1)*ow : (2*oh+2)*ow]
			for j, v := range down {
				dst[j] = max(dst[j], v)
			}
		}
	}
}
