package cuda

import (
	"math"

	"github.com/detlab/detlab/lib/nn"
)

// gemmExtent is how many elements a row-major operand with rows r, columns
// c (as stored) and leading dimension ld spans.
func gemmExtent(rows, cols, ld int) int {
	if rows == 0 || cols == 0 {
		return 0
	}
	return (rows-1)*ld + cols
}

// Gemm implements nn.Backend with cublasSgemm_v2 (row-major through the
// transpose swap). Degenerate products (k or alpha zero, where C is only
// scaled) and sizes beyond cuBLAS's int run on the host.
func (b *Backend) Gemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, bm []float32, ldb int, beta float32, c []float32, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	if k == 0 || alpha == 0 || max(m, n, k, lda, ldb, ldc) > math.MaxInt32 {
		nn.CPU{}.Gemm(transA, transB, m, n, k, alpha, a, lda, bm, ldb, beta, c, ldc)
		return
	}
	as, bs, cs := gemmOperands("Gemm", transA, transB, m, n, k, a, lda, bm, ldb, c, ldc)
	b.run("Gemm", func(s *scope) {
		pa, pb := s.f32(as, read), s.f32(bs, read)
		pc := s.f32(cs, readWrite) // rows may have gaps (ldc > n): never write-only
		s.gemm(transA, transB, m, n, k, alpha, pa, lda, pb, ldb, beta, pc, ldc)
	})
}

// gemmOperands returns row-major op(A) (m x k), op(B) (k x n) and C (m x
// n) cut to the extents their leading dimensions give, panicking with an
// *OpError naming op when one is short.
func gemmOperands(op string, transA, transB bool, m, n, k int, a []float32, lda int, bm []float32, ldb int, c []float32, ldc int) (as, bs, cs []float32) {
	ar, ac := m, k
	if transA {
		ar, ac = k, m
	}
	br, bc := k, n
	if transB {
		br, bc = n, k
	}
	return need(op, "A", a, gemmExtent(ar, ac, lda)), need(op, "B", bm, gemmExtent(br, bc, ldb)), need(op, "C", c, gemmExtent(m, n, ldc))
}

// pointwise reports a 1x1, stride 1, unpadded convolution, whose im2col
// matrix is the image itself.
func pointwise(g nn.ConvGeom) bool {
	return g.KH == 1 && g.KW == 1 && g.SH == 1 && g.SW == 1 && g.PH == 0 && g.PW == 0
}

// convArgs are im2col's and col2im's geometry arguments after the two
// pointers.
func convArgs(g nn.ConvGeom) []karg {
	return []karg{iArg(g.C), iArg(g.H), iArg(g.W), iArg(g.KH), iArg(g.KW),
		iArg(g.SH), iArg(g.SW), iArg(g.PH), iArg(g.PW), iArg(g.OH), iArg(g.OW)}
}

// at offsets a device address by i float32s (0 stays 0: an earlier
// failure already stopped the operation).
func at(p uint64, i int) uint64 {
	if p == 0 {
		return 0
	}
	return p + uint64(4*i)
}

// Conv2d implements nn.Backend: per image, the im2col kernel into a device
// buffer (skipped for 1x1 stride-1 convolutions) and one GEMM into y, then
// one bias kernel. With geo.Precision BFloat16 or Float16 (an autocast
// region on a backend reporting NativePrecision) the operands arrive
// unrounded and the products run in 16 bits instead (conv2dHalf in
// precision.go). The Scratch is not used: columns live in device memory.
func (b *Backend) Conv2d(geo nn.ConvGeom, x, w, bias, y []float32, _ nn.Scratch) {
	ckk, chw := geo.C*geo.KH*geo.KW, geo.C*geo.H*geo.W
	xs := need("Conv2d", "x", x, geo.N*chw)
	ws := need("Conv2d", "w", w, geo.K*ckk)
	ys := need("Conv2d", "y", y, geo.N*geo.K*geo.OH*geo.OW)
	if bias != nil {
		bias = need("Conv2d", "bias", bias, geo.K)
	}
	if len(ys) == 0 {
		return
	}
	b.run("Conv2d", func(s *scope) {
		py := s.f32(ys, write)
		b.convProducts(s, geo, xs, ws, py)
		s.biasAdd(geo, py, bias)
	})
}

// convProducts writes conv(x, w) into the device output py: in float32,
// or with geo.Precision BFloat16 or Float16 natively in 16 bits
// (conv2dHalf) or, where the device lacks that format, as the float32
// products of operands rounded on the device.
func (b *Backend) convProducts(s *scope, geo nn.ConvGeom, xs, ws []float32, py uint64) {
	px, pw := s.f32(xs, read), s.f32(ws, read)
	if p := geo.Precision; p != nn.Float32 {
		if b.g.halfGemm(p) {
			conv2dHalf(s, geo, px, pw, py)
			return
		}
		// Not native here (a caller that did not ask NativePrecision):
		// the float32 path on rounded operands.
		px, pw = s.rounded(p, px, len(xs)), s.rounded(p, pw, len(ws))
	}
	conv2dF32(s, geo, px, pw, py)
}

// conv2dF32 is Conv2d's float32 products: per image im2col (unless
// pointwise) and one cublasSgemm into y.
func conv2dF32(s *scope, geo nn.ConvGeom, px, pw, py uint64) {
	ckk, ohw, chw := geo.C*geo.KH*geo.KW, geo.OH*geo.OW, geo.C*geo.H*geo.W
	var col uint64
	if !pointwise(geo) {
		col = s.temp(4 * ckk * ohw)
	}
	for n := 0; n < geo.N; n++ {
		src := at(px, n*chw)
		if col != 0 {
			s.launch("detlab_im2col", gridFor(ckk*ohw), append([]karg{pArg(src), pArg(col)}, convArgs(geo)...)...)
			src = col
		}
		s.gemm(false, false, geo.K, ohw, ckk, 1, pw, ckk, src, ohw, 0, at(py, n*geo.K*ohw), ohw)
	}
}

// biasAdd adds bias[k] to every output of channel k (nothing for nil).
func (s *scope) biasAdd(geo nn.ConvGeom, py uint64, bias []float32) {
	if bias == nil {
		return
	}
	pb := s.f32(bias, read)
	ohw := geo.OH * geo.OW
	s.launch("detlab_bias_add", gridFor(geo.N*geo.K*ohw), pArg(py), pArg(pb), iArg(geo.N), iArg(geo.K), iArg(ohw))
}

// Conv2dBackward implements nn.Backend: db += the channel sums of dy (one
// reduction kernel); per image dw += dy * im2col(x)^T and, for dx, the
// GEMM w^T * dy into a device buffer folded into dx by the col2im kernel
// (1x1 stride-1: the GEMM accumulates into dx directly). With
// geo.Precision BFloat16 or Float16 both products, dw's and dx's, take
// x, w and dy in 16 bits (conv2dBackwardHalf in precision.go), as lib/nn's
// CPU path and torch's autocast do; db sums dy in float32 (the layer has
// rounded dy already).
func (b *Backend) Conv2dBackward(geo nn.ConvGeom, x, w, dy, dx, dw, db []float32, _ nn.Scratch) {
	ckk, ohw, chw := geo.C*geo.KH*geo.KW, geo.OH*geo.OW, geo.C*geo.H*geo.W
	dys := need("Conv2dBackward", "dy", dy, geo.N*geo.K*ohw)
	if dw != nil {
		x = need("Conv2dBackward", "x", x, geo.N*chw)
		dw = need("Conv2dBackward", "dw", dw, geo.K*ckk)
	}
	if dx != nil {
		w = need("Conv2dBackward", "w", w, geo.K*ckk)
		dx = need("Conv2dBackward", "dx", dx, geo.N*chw)
	}
	if db != nil {
		db = need("Conv2dBackward", "db", db, geo.K)
	}
	if len(dys) == 0 || (dx == nil && dw == nil && db == nil) {
		return
	}
	b.run("Conv2dBackward", func(s *scope) {
		pdy := s.f32(dys, read)
		if db != nil {
			pdb := s.f32(db, readWrite)
			s.launch("detlab_channel_sum_add", channelGrid(geo.K), pArg(pdy), pArg(pdb), iArg(geo.N), iArg(geo.K), iArg(ohw))
		}
		if dw == nil && dx == nil {
			return
		}
		var px, pw, pdw, pdx uint64
		if dw != nil {
			px, pdw = s.f32(x, read), s.f32(dw, readWrite)
		}
		if dx != nil {
			pw, pdx = s.f32(w, read), s.f32(dx, readWrite)
		}
		if p := geo.Precision; p != nn.Float32 {
			if b.g.halfGemm(p) {
				conv2dBackwardHalf(s, geo, px, pw, pdy, pdx, pdw)
				return
			}
			// Not native here: the float32 path on rounded operands.
			pdy = s.rounded(p, pdy, len(dys))
			if dw != nil {
				px = s.rounded(p, px, len(x))
			}
			if dx != nil {
				pw = s.rounded(p, pw, len(w))
			}
		}
		conv2dBackwardF32(s, geo, px, pw, pdy, pdx, pdw)
	})
}

// conv2dBackwardF32 is Conv2dBackward's float32 products (pdx or pdw 0
// when not wanted).
func conv2dBackwardF32(s *scope, geo nn.ConvGeom, px, pw, pdy, pdx, pdw uint64) {
	ckk, ohw, chw := geo.C*geo.KH*geo.KW, geo.OH*geo.OW, geo.C*geo.H*geo.W
	var col uint64
	if !pointwise(geo) {
		col = s.temp(4 * ckk * ohw)
	}
	for n := 0; n < geo.N; n++ {
		dyn := at(pdy, n*geo.K*ohw)
		if pdw != 0 {
			src := at(px, n*chw)
			if col != 0 {
				s.launch("detlab_im2col", gridFor(ckk*ohw), append([]karg{pArg(src), pArg(col)}, convArgs(geo)...)...)
				src = col
			}
			s.gemm(false, true, geo.K, ckk, ohw, 1, dyn, ohw, src, ohw, 1, pdw, ckk)
		}
		if pdx != 0 {
			dxn := at(pdx, n*chw)
			if col == 0 {
				s.gemm(true, false, ckk, ohw, geo.K, 1, pw, ckk, dyn, ohw, 1, dxn, ohw)
				continue
			}
			s.gemm(true, false, ckk, ohw, geo.K, 1, pw, ckk, dyn, ohw, 0, col, ohw)
			s.launch("detlab_col2im", gridFor(chw), append([]karg{pArg(col), pArg(dxn)}, convArgs(geo)...)...)
		}
	}
}

// ChannelStats implements nn.Backend with one two-pass float64 reduction
// kernel (one block per channel).
func (b *Backend) ChannelStats(x []float32, n, c, hw int, mean, variance []float64) {
	xs := need("ChannelStats", "x", x, n*c*hw)
	if len(mean) < c || len(variance) < c {
		panic(&OpError{Op: "ChannelStats", Err: errShort("mean/variance", min(len(mean), len(variance)), c)})
	}
	if c == 0 {
		return
	}
	b.run("ChannelStats", func(s *scope) {
		// The statistics are BatchNorm's float64 host arithmetic's input
		// (nn.Backend's contract): wait for them even in managed memory.
		s.hostRead = true
		px := s.f32(xs, read)
		pm, pv := s.f64(mean[:c], write), s.f64(variance[:c], write)
		s.launch("detlab_channel_stats", channelGrid(c), pArg(px), iArg(n), iArg(c), iArg(hw), pArg(pm), pArg(pv))
	})
}

// ChannelAffine implements nn.Backend (y may alias x).
func (b *Backend) ChannelAffine(x, y []float32, n, c, hw int, scale, shift []float32, relu bool) {
	xs := need("ChannelAffine", "x", x, n*c*hw)
	ys := need("ChannelAffine", "y", y, n*c*hw)
	scale = need("ChannelAffine", "scale", scale, c)
	shift = need("ChannelAffine", "shift", shift, c)
	if len(xs) == 0 {
		return
	}
	b.run("ChannelAffine", func(s *scope) {
		px, py := s.f32(xs, read), s.f32(ys, write)
		ps, pt := s.f32(scale, read), s.f32(shift, read)
		s.launch("detlab_channel_affine", gridFor(n*c*hw), pArg(px), pArg(py), iArg(n), iArg(c), iArg(hw), pArg(ps), pArg(pt), bArg(relu))
	})
}

// MaxPool2d implements nn.Backend.
func (b *Backend) MaxPool2d(geo nn.PoolGeom, x, y []float32, arg []int32) {
	out := geo.Planes * geo.OH * geo.OW
	xs := need("MaxPool2d", "x", x, geo.Planes*geo.H*geo.W)
	ys := need("MaxPool2d", "y", y, out)
	if arg != nil {
		if len(arg) < out {
			panic(&OpError{Op: "MaxPool2d", Err: errShort("arg", len(arg), out)})
		}
		arg = arg[:out]
	}
	if out == 0 {
		return
	}
	b.run("MaxPool2d", func(s *scope) {
		px, py, pa := s.f32(xs, read), s.f32(ys, write), s.i32(arg, write)
		s.launch("detlab_maxpool2d", gridFor(out), pArg(px), pArg(py), pArg(pa),
			iArg(geo.Planes), iArg(geo.H), iArg(geo.W), iArg(geo.KH), iArg(geo.KW),
			iArg(geo.SH), iArg(geo.SW), iArg(geo.PH), iArg(geo.PW), iArg(geo.OH), iArg(geo.OW))
	})
}

// MaxPool2dBackward implements nn.Backend (atomic adds into dx).
func (b *Backend) MaxPool2dBackward(geo nn.PoolGeom, dy, dx []float32, arg []int32) {
	out := geo.Planes * geo.OH * geo.OW
	dys := need("MaxPool2dBackward", "dy", dy, out)
	dxs := need("MaxPool2dBackward", "dx", dx, geo.Planes*geo.H*geo.W)
	if len(arg) < out {
		panic(&OpError{Op: "MaxPool2dBackward", Err: errShort("arg", len(arg), out)})
	}
	if out == 0 {
		return
	}
	b.run("MaxPool2dBackward", func(s *scope) {
		pdy, pdx, pa := s.f32(dys, read), s.f32(dxs, readWrite), s.i32(arg[:out], read)
		s.launch("detlab_maxpool2d_backward", gridFor(out), pArg(pdy), pArg(pdx), pArg(pa),
			iArg(geo.Planes), iArg(geo.H), iArg(geo.W), iArg(geo.OH), iArg(geo.OW))
	})
}
