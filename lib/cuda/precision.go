package cuda

import (
	"math"

	"github.com/detlab/detlab/lib/nn"
)

// Autocast on the GPU. Backend implements nn.PrecisionBackend: where cuBLAS
// has cublasGemmEx and the device multiplies the format (bfloat16 from
// compute capability 8.0, binary16 from 5.3), NativePrecision reports true
// and the layers hand Conv2d, Conv2dBackward and GemmPrecision unrounded
// float32 operands. The backend converts them on the device to 16-bit
// scratch (the detlab_to_* and detlab_im2col_* kernels of half.cu, which
// round exactly as nn.RoundBF16 / nn.RoundFP16) and multiplies with
// cublasGemmEx / cublasGemmStridedBatchedEx: 16-bit A and B, float32 C,
// CUBLAS_COMPUTE_32F (float32 accumulation; a product of two 16-bit values
// is exact in float32), so the results equal the float32 GEMM of the
// rounded operands up to the order of the float32 additions. Outputs,
// gradients and everything outside the products stay float32, as in
// lib/nn's emulated autocast.
//
// A convolution converts the images of a chunk at once into one patch
// matrix (C*KH*KW, n*ldn; ldn is OH*OW rounded up to 8) and runs one
// batched GEMM for their outputs;
// its weight gradient is then a single GEMM over all the chunk's columns.

// halfColBudget bounds the bytes of 16-bit patch matrix (plus, for dx,
// float32 column gradients) one chunk of a convolution's images uses (a
// variable for the tests).
var halfColBudget = 256 << 20

// NativePrecision implements nn.PrecisionBackend: true for nn.BFloat16
// and nn.Float16 when cuBLAS has cublasGemmEx and the device multiplies
// that format (bfloat16 needs compute capability 8.0, binary16 5.3).
func (b *Backend) NativePrecision(p nn.Precision) bool {
	return p != nn.Float32 && b.g.halfGemm(p)
}

// GemmPrecision implements nn.PrecisionBackend: Gemm with op(A) and op(B)
// rounded to p (as nn.RoundBF16 / nn.RoundFP16) and float32 accumulation;
// C, alpha and beta stay float32. Natively (NativePrecision(p)) the
// operands are converted to 16 bits on the device and multiplied by
// cublasGemmEx; otherwise they are rounded on the device and multiplied by
// the float32 GEMM. Float32 is Gemm.
func (b *Backend) GemmPrecision(p nn.Precision, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, bm []float32, ldb int, beta float32, c []float32, ldc int) {
	if p == nn.Float32 {
		b.Gemm(transA, transB, m, n, k, alpha, a, lda, bm, ldb, beta, c, ldc)
		return
	}
	if m == 0 || n == 0 {
		return
	}
	as, bs, cs := gemmOperands("GemmPrecision", transA, transB, m, n, k, a, lda, bm, ldb, c, ldc)
	if k == 0 || alpha == 0 {
		// C is only scaled: the operands do not matter.
		nn.CPU{}.Gemm(transA, transB, m, n, k, alpha, as, lda, bs, ldb, beta, cs, ldc)
		return
	}
	if max(m, n, k, lda, ldb, ldc, len(as), len(bs)) > math.MaxInt32 {
		// Beyond cuBLAS's and the kernels' int: rounded copies on the host.
		ra, rb := make([]float32, len(as)), make([]float32, len(bs))
		p.RoundSlice(ra, as)
		p.RoundSlice(rb, bs)
		nn.CPU{}.Gemm(transA, transB, m, n, k, alpha, ra, lda, rb, ldb, beta, cs, ldc)
		return
	}
	native := b.g.halfGemm(p)
	b.run("GemmPrecision", func(s *scope) {
		pa, pb := s.f32(as, read), s.f32(bs, read)
		pc := s.f32(cs, readWrite) // rows may have gaps (ldc > n): never write-only
		if native {
			ha, hb := s.toHalf(p, pa, len(as)), s.toHalf(p, pb, len(bs))
			s.gemmEx(p, transA, transB, m, n, k, alpha, ha, lda, 0, hb, ldb, 0, beta, pc, ldc, 0, 1)
			return
		}
		s.gemm(transA, transB, m, n, k, alpha, s.rounded(p, pa, len(as)), lda, s.rounded(p, pb, len(bs)), ldb, beta, pc, ldc)
	})
}

// at16 offsets a device address by i 16-bit elements (0 stays 0).
func at16(p uint64, i int) uint64 {
	if p == 0 {
		return 0
	}
	return p + uint64(2*i)
}

// roundKernel names the kernel rounding float32 to p in float32.
func roundKernel(p nn.Precision) string {
	if p == nn.Float16 {
		return "detlab_round_fp16"
	}
	return "detlab_round_bf16"
}

// halfKernels names the conversion and patch kernels for p.
func halfKernels(p nn.Precision) (convert, im2col string) {
	if p == nn.Float16 {
		return "detlab_to_fp16", "detlab_im2col_fp16"
	}
	return "detlab_to_bf16", "detlab_im2col_bf16"
}

// rounded returns a device scratch copy of the n float32s at src rounded
// to p (still float32): operands for the float32 GEMM where the device
// has no native p.
func (s *scope) rounded(p nn.Precision, src uint64, n int) uint64 {
	if n == 0 || src == 0 {
		return 0
	}
	dst := s.temp(4 * n)
	s.launch(roundKernel(p), gridFor(n), pArg(src), pArg(dst), iArg(n))
	return dst
}

// toHalf returns a device scratch buffer holding the n float32s at src as
// 16-bit encodings of p.
func (s *scope) toHalf(p nn.Precision, src uint64, n int) uint64 {
	if n == 0 || src == 0 {
		return 0
	}
	dst := s.temp(2 * n)
	convert, _ := halfKernels(p)
	s.launch(convert, gridFor(n), pArg(src), pArg(dst), iArg(n))
	return dst
}

// halfLD is the column stride of one image in a 16-bit patch matrix: OH*OW
// rounded up to 8 elements, so that every image's first column, and the
// leading dimension, are 16-byte aligned as cuBLAS's tensor-core kernels
// want them (the padding columns are zeros).
func halfLD(ohw int) int { return (ohw + 7) &^ 7 }

// im2colHalf writes into col (16-bit, C*KH*KW rows by n*ldn columns) the
// patch matrices of the n images at x, side by side, image i's at column
// i*ldn (detlab_im2col_bf16 / _fp16).
func (s *scope) im2colHalf(p nn.Precision, geo nn.ConvGeom, x, col uint64, n, ldn int) {
	_, kernel := halfKernels(p)
	work := n * geo.C * geo.KH * geo.KW * ldn
	s.launch(kernel, gridFor(work), pArg(x), pArg(col), iArg(n), iArg(geo.C), iArg(geo.H), iArg(geo.W),
		iArg(geo.KH), iArg(geo.KW), iArg(geo.SH), iArg(geo.SW), iArg(geo.PH), iArg(geo.PW), iArg(geo.OH), iArg(geo.OW),
		iArg(ldn))
}

// gemmEx is the row-major, batched C_i = alpha*op(A_i)*op(B_i) + beta*C_i
// (i < batch, operand i at its base plus i times its stride, in elements)
// with 16-bit A and B of precision p and float32 C, through column-major
// cuBLAS by the swap of scope.gemm.
func (s *scope) gemmEx(p nn.Precision, transA, transB bool, m, n, k int, alpha float32, a uint64, lda, strideA int,
	b uint64, ldb, strideB int, beta float32, c uint64, ldc, strideC, batch int) {
	if s.err != nil || batch <= 0 {
		return
	}
	s.b.stats.GEMMs++
	s.b.pending.Store(true)
	if err := s.b.g.gemmEx(p, transB, transA, n, m, k, alpha, b, ldb, int64(strideB), a, lda, int64(strideA),
		beta, c, ldc, int64(strideC), batch); err != nil {
		s.fail(err)
	}
}

// halfChunk returns how many images of a convolution one chunk converts
// at once: as many as fit halfColBudget at perImage bytes each (at least
// one), and few enough that n*halfLD(OH*OW), a GEMM dimension, fits an
// int.
func halfChunk(geo nn.ConvGeom, perImage int) int {
	return max(1, min(geo.N, halfColBudget/max(perImage, 1), math.MaxInt32/halfLD(geo.OH*geo.OW)))
}

// conv2dHalf is Conv2d's products in p: the weights converted once, then
// per chunk of images one patch-matrix kernel and one batched GEMM
// y_i = w * col_i (col_i: columns i*ldn.. of the chunk's patch matrix).
func conv2dHalf(s *scope, geo nn.ConvGeom, px, pw, py uint64) {
	p := geo.Precision
	ckk, ohw, chw := geo.C*geo.KH*geo.KW, geo.OH*geo.OW, geo.C*geo.H*geo.W
	ldn := halfLD(ohw)
	wh := s.toHalf(p, pw, geo.K*ckk)
	nc := halfChunk(geo, 2*ckk*ldn)
	col := s.temp(2 * ckk * nc * ldn)
	for n0 := 0; n0 < geo.N && s.err == nil; n0 += nc {
		c := min(nc, geo.N-n0)
		s.im2colHalf(p, geo, at(px, n0*chw), col, c, ldn)
		s.gemmEx(p, false, false, geo.K, ohw, ckk, 1, wh, ckk, 0, col, c*ldn, ldn, 0, at(py, n0*geo.K*ohw), ohw, geo.K*ohw, c)
	}
}

// conv2dBackwardHalf is Conv2dBackward's products in p (pdx or pdw 0 when
// not wanted). Per chunk of images: dy as a 16-bit (K, n*ldn) matrix
// (the 1x1 patch kernel), then dw += dy * col^T as one GEMM over all the
// chunk's columns, and dx through one batched GEMM dcol_i = w^T * dy_i
// folded by col2im per image (1x1 stride-1: accumulated into dx
// directly).
func conv2dBackwardHalf(s *scope, geo nn.ConvGeom, px, pw, pdy, pdx, pdw uint64) {
	p := geo.Precision
	ckk, ohw, chw := geo.C*geo.KH*geo.KW, geo.OH*geo.OW, geo.C*geo.H*geo.W
	pw1 := pointwise(geo)
	ldn := halfLD(ohw)
	perImage := 2 * geo.K * ldn
	if pdw != 0 {
		perImage += 2 * ckk * ldn
	}
	if pdx != 0 && !pw1 {
		perImage += 4 * ckk * ohw
	}
	nc := halfChunk(geo, perImage)
	dyGeo := nn.ConvGeom{C: geo.K, H: geo.OH, W: geo.OW, KH: 1, KW: 1, SH: 1, SW: 1, OH: geo.OH, OW: geo.OW}
	dyh := s.temp(2 * geo.K * nc * ldn)
	var col, wh, dcol uint64
	if pdw != 0 {
		col = s.temp(2 * ckk * nc * ldn)
	}
	if pdx != 0 {
		wh = s.toHalf(p, pw, geo.K*ckk)
		if !pw1 {
			dcol = s.temp(4 * ckk * nc * ohw)
		}
	}
	for n0 := 0; n0 < geo.N && s.err == nil; n0 += nc {
		c := min(nc, geo.N-n0)
		cols := c * ldn // the padding columns are zeros in both operands of dw's product
		s.im2colHalf(p, dyGeo, at(pdy, n0*geo.K*ohw), dyh, c, ldn)
		if pdw != 0 {
			s.im2colHalf(p, geo, at(px, n0*chw), col, c, ldn)
			s.gemmEx(p, false, true, geo.K, ckk, cols, 1, dyh, cols, 0, col, cols, 0, 1, pdw, ckk, 0, 1)
		}
		if pdx == 0 {
			continue
		}
		if pw1 {
			s.gemmEx(p, true, false, ckk, ohw, geo.K, 1, wh, ckk, 0, dyh, cols, ldn, 1, at(pdx, n0*chw), ohw, chw, c)
			continue
		}
		s.gemmEx(p, true, false, ckk, ohw, geo.K, 1, wh, ckk, 0, dyh, cols, ldn, 0, dcol, ohw, ckk*ohw, c)
		for i := 0; i < c; i++ {
			s.launch("detlab_col2im", gridFor(chw), append([]karg{pArg(at(dcol, i*ckk*ohw)), pArg(at(pdx, (n0+i)*chw))}, convArgs(geo)...)...)
		}
	}
}
