package nn

import (
	"fmt"
	"math"
	"strings"

	"github.com/detlab/detlab/lib/compute"
)

// Precision is the floating-point format an autocast region computes its
// matrix products in (torch.autocast's dtype).
type Precision int

const (
	// Float32 is full precision: autocast off (the default).
	Float32 Precision = iota
	// BFloat16 is bfloat16 (8 exponent bits, 7 mantissa bits): float32's
	// range at about 3 significant decimal digits.
	BFloat16
	// Float16 is IEEE half precision (5 exponent bits, 10 mantissa bits):
	// values above 65504 in magnitude become ±Inf, which is what a
	// gradient scaler watches for.
	Float16
)

// String names the precision as torch does ("float32", "bfloat16",
// "float16").
func (p Precision) String() string {
	switch p {
	case Float32:
		return "float32"
	case BFloat16:
		return "bfloat16"
	case Float16:
		return "float16"
	}
	return fmt.Sprintf("Precision(%d)", int(p))
}

// Round returns v rounded to p (round to nearest, ties to even) and
// widened back to float32. Float32 returns v unchanged.
func (p Precision) Round(v float32) float32 {
	switch p {
	case BFloat16:
		return RoundBF16(v)
	case Float16:
		return RoundFP16(v)
	}
	return v
}

// RoundSlice writes src rounded to p into dst (len(dst) >= len(src)); dst
// may alias src.
func (p Precision) RoundSlice(dst, src []float32) {
	dst = dst[:len(src)]
	switch p {
	case BFloat16:
		// compute.RoundBF16Slice is RoundBF16, vectorised where it can be.
		parallelFor(len(src)/8192+1, func(c0, c1 int) {
			lo, hi := c0*8192, min(c1*8192, len(src))
			compute.RoundBF16Slice(dst[lo:hi], src[lo:hi])
		})
	case Float16:
		parallelFor(len(src)/8192+1, func(c0, c1 int) {
			lo, hi := c0*8192, min(c1*8192, len(src))
			for i := lo; i < hi; i++ {
				dst[i] = RoundFP16(src[i])
			}
		})
	default:
		copy(dst, src)
	}
}

// RoundBF16 rounds v to the nearest bfloat16 (ties to even) and returns it
// as a float32: the low 16 bits of the result are zero. NaN stays NaN;
// values beyond bfloat16's largest finite value round to ±Inf.
func RoundBF16(v float32) float32 {
	b := math.Float32bits(v)
	if b&0x7f800000 == 0x7f800000 { // Inf or NaN
		if b&0x007fffff != 0 {
			b |= 0x00400000 // keep NaN a (quiet) NaN after truncation
		}
		return math.Float32frombits(b &^ 0xffff)
	}
	b += 0x7fff + (b>>16)&1
	return math.Float32frombits(b &^ 0xffff)
}

// fp16 limits.
const (
	fp16Max       = 65504
	fp16MinNormal = 1.0 / (1 << 14)
)

// RoundFP16 rounds v to the nearest IEEE binary16 value (ties to even,
// subnormals included) and returns it as a float32, exactly as a
// float32 -> float16 -> float32 conversion would: magnitudes of 65520 and
// above become ±Inf, NaN stays NaN.
func RoundFP16(v float32) float32 {
	a := float32(math.Abs(float64(v)))
	switch {
	case v != v || a == float32(math.Inf(1)):
		return v
	case a >= fp16MinNormal:
		b := math.Float32bits(v)
		b += 0xfff + (b>>13)&1 // drop 13 of float32's 23 mantissa bits
		r := math.Float32frombits(b &^ 0x1fff)
		if float32(math.Abs(float64(r))) > fp16Max {
			return float32(math.Copysign(math.Inf(1), float64(v)))
		}
		return r
	default: // subnormal range: multiples of 2^-24
		const q = 1 << 24
		return float32(math.RoundToEven(float64(v)*q) / q)
	}
}

// WithAutocast makes g run its matrix products in precision p (torch's
// autocast region) and returns g. Float32 turns it off.
//
// Which op runs in which precision under BFloat16 or Float16 follows
// torch.autocast's CPU op lists:
//
//   - Reduced precision (torch's lower-precision list: conv2d, linear,
//     matmul): Conv2d and Linear multiply operands rounded to p, the input
//     and weight in forward, and in backward also the output gradient, so
//     the gradient products run in p too. Products accumulate in float32;
//     outputs, input gradients and parameter gradients are float32, and the
//     parameters themselves (the master weights) stay float32.
//   - RoIAlign (roialign.Apply) pools features rounded to p and, in
//     backward, the output gradient rounded to p, accumulating in float32
//     (torchvision's roi_align autocasts its input to float32 and back, so
//     it sees the reduced-precision features).
//   - Float32 (torch's float32 list and the ops autocast leaves alone):
//     BatchNorm (frozen or not), ReLU, max pooling, additions, softmax,
//     cross-entropy, smooth-L1 and every other loss, box coding, and the
//     optimizer step.
//
// With Float16, overflow past 65504 yields ±Inf in the rounded operands, so
// a too large loss scale shows up as Inf or NaN gradients for a gradient
// scaler to detect.
//
// How the products run depends on the graph's backend (AutocastKernels
// says which):
//
//   - Native: where the backend implements PrecisionBackend and reports
//     NativePrecision(p), the layers hand it unrounded float32 operands
//     with the precision (ConvGeom.Precision for Conv2d, Conv2dBackward
//     and ConvBN's fused convolution, GemmPrecision for Linear) and the
//     backend rounds while it packs or converts. The CPU backend does
//     this for BFloat16 on AVX512_BF16 processors (compute.SgemmBF16:
//     VDPBF16PS, bfloat16 products into float32 accumulators), which
//     skips the rounded copies and multiplies at twice the float32 rate.
//     lib/cuda's backend does it for BFloat16 (compute capability 8.0 and
//     up) and Float16 (5.3 and up) where cuBLAS has cublasGemmEx: the
//     operands are converted to 16 bits on the device and multiplied with
//     float32 accumulation (CUBLAS_COMPUTE_32F).
//   - Emulated: everywhere else, and always for Float16 on the CPU (these
//     machines have no AVX512-FP16), the layers round copies of the
//     operands to p and run the float32 kernels: the same numbers, no
//     speed-up.
//
// The two agree up to the order of the float32 additions (a product of two
// 16-bit values is exact in float32), except that VDPBF16PS treats
// bfloat16 subnormals (magnitudes below 1.2e-38) as zero.
func (g *Graph) WithAutocast(p Precision) *Graph {
	g.autocast = p
	return g
}

// Autocast returns the precision g's matrix products run in (Float32 when
// autocast is off). Ops defined outside this package use it to follow the
// region's precision.
func (g *Graph) Autocast() Precision { return g.autocast }

// PrecisionBackend is an optional interface of a Backend that computes
// reduced-precision products natively. Layers find it by type assertion;
// the CPU backend (bfloat16 on AVX512_BF16) and lib/cuda's backend
// (bfloat16 and float16 through cublasGemmEx) implement it.
type PrecisionBackend interface {
	// NativePrecision reports whether the backend computes in p natively:
	// then Conv2d and Conv2dBackward honour ConvGeom.Precision on
	// unrounded float32 operands, and GemmPrecision runs in p. When false,
	// layers round their operands to p themselves and call the float32
	// kernels.
	NativePrecision(p Precision) bool
	// GemmPrecision is Gemm with op(A) and op(B) rounded to p and float32
	// accumulation, C, alpha and beta staying float32.
	GemmPrecision(p Precision, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int)
}

// nativeBackend returns b as a PrecisionBackend when it computes in p
// natively, else nil (Float32 is never "native": it needs nothing).
func nativeBackend(b Backend, p Precision) PrecisionBackend {
	if p == Float32 {
		return nil
	}
	if pb, ok := b.(PrecisionBackend); ok && pb.NativePrecision(p) {
		return pb
	}
	return nil
}

// AutocastKernels says how an autocast region in precision p computes on
// the current backend (CurrentBackend), for benchmark printouts and model
// summaries.
func AutocastKernels(p Precision) string {
	if p == Float32 {
		return "float32 kernels"
	}
	if nativeBackend(CurrentBackend(), p) != nil {
		if _, ok := CurrentBackend().(CPU); ok && p == BFloat16 {
			return p.String() + " native (" + strings.TrimPrefix(compute.BF16Backend(), "native ") + ", float32 accumulation)"
		}
		return p.String() + " native (" + CurrentBackend().Name() + ")"
	}
	return p.String() + " emulated (operands rounded to " + p.String() + ", float32 GEMM and accumulation)"
}

// roundedCopy returns a graph-owned copy of src rounded to g's autocast
// precision.
func (g *Graph) roundedCopy(src []float32, shape ...int) []float32 {
	return g.RoundedCopy(g.autocast, src, shape...)
}

// RoundedCopy returns a copy of src (shaped shape) rounded to precision p,
// in a buffer g owns until Release (the arena's, never cleared first), on
// g's backend when it rounds (RoundingBackend): how an op outside this
// package (RoIAlign) takes its autocast operands.
func (g *Graph) RoundedCopy(p Precision, src []float32, shape ...int) []float32 {
	t := g.newTensorNoZero(shape...)
	g.roundAs(p, t.Data(), src)
	return t.Data()
}
