package compute

import (
	"fmt"
	"strings"
)

// bfloat16 convolutions through oneDNN (ConvShape.BF16).
//
// ConvOneDNN, ConvOneDNNPrepared, ConvOneDNNWeightsKind, NewOneDNNWeights
// and ConvOneDNNImpl take a ConvShape whose BF16 field is set exactly as a
// float32 one: the primitive, its reorders and its prepared weights are
// cached per shape and precision, and OneDNNWeights made for a bfloat16
// shape hold the weights already rounded to bfloat16 in oneDNN's blocked
// layout (their Kind differs from the float32 layout's, so one parameter
// can cache both). oneDNN dispatches at run time: avx512_core_amx (AMX
// tiles) on Sapphire Rapids and later, avx512_core_bf16 (VDPBF16PS) on
// CPUs with AVX512_BF16 and no AMX, its reference or GEMM-based
// implementations elsewhere. ConvOneDNNImpl names the one it picked, e.g.
// "brg:avx512_core_amx" or "jit:avx512_core_bf16".
//
// Numerics: the input and weights are rounded to bfloat16 by oneDNN's
// reorders (nearest, ties to even, NaN kept a NaN, overflow to ±Inf: the
// bits of RoundBF16Slice, except that on AVX512_BF16 hardware subnormal
// values flush to zero, which the bfloat16 multiply instructions, ours
// included, do anyway), the products of bfloat16 values are exact in
// float32 and are summed in float32, and Scale, Shift, the residual and
// the ReLU are float32 operations on that sum, as in SgemmBF16 with an
// Epilogue. The result therefore differs from the Go bfloat16 GEMM's only
// by the order of the float32 additions.

// autoUsesBF16 reports whether DETLAB_CONV=auto runs a bfloat16
// convolution on oneDNN's implementation impl: a JIT direct one that
// multiplies in bfloat16 (avx512_core_bf16, or AMX's avx512_core_amx),
// whatever the epilogue, not its reference, GEMM-based or emulated ones.
func autoUsesBF16(impl string) bool {
	return jitDirect(impl) && (strings.Contains(impl, "bf16") || strings.Contains(impl, "amx"))
}

// bf16PaddedChannels returns the channel count oneDNN's primitive for s
// is built with: s.C, or s.C+1 (a zero channel added to the input and the
// weights) for a bfloat16 convolution with an odd s.C. oneDNN 2.6 lays an
// odd-channel bfloat16 input out as NHWC, and its bfloat16 kernels
// multiply the zero weight that pads the last channel pair of one pixel
// by the first channel of the next pixel: a NaN or Inf there (0*Inf is
// NaN) would turn one more output, to the left of the true ones, into
// NaN (measured: 1x1, 3x3 and 7x7 kernels over 1, 3, 5, 13, 37 channels).
// The blocked nChw16c layout, which pads with zeros, makes oneDNN fall
// back to its reference implementation for the 3-channel stem; an even
// channel count keeps brgconv and costs one copy of the input.
func bf16PaddedChannels(s ConvShape) int {
	if s.BF16 && s.C%2 == 1 {
		return s.C + 1
	}
	return s.C
}

// padChannels copies src (outer, c, inner) into dst (outer, cp, inner),
// cp > c, leaving channels [c, cp) of dst as they are (zero: callers
// never write them).
func padChannels(dst, src []float32, outer, c, cp, inner int) {
	for o := 0; o < outer; o++ {
		copy(dst[o*cp*inner:(o*cp+c)*inner], src[o*c*inner:(o+1)*c*inner])
	}
}

// withBF16Kernel appends to c's name the implementation oneDNN picks for
// a small bfloat16 3x3 convolution (64 channels, 8x8: its buffers are
// small), which says whether autocast's convolutions would run on AMX,
// AVX512_BF16 or neither.
func (c convChoice) withBF16Kernel() convChoice {
	s := ConvShape{N: 1, C: 64, H: 8, W: 8, K: 64, KH: 3, KW: 3, SH: 1, SW: 1, PH: 1, PW: 1, OH: 8, OW: 8, BF16: true}
	p, err := c.eng.prim(convKeyOf(s, Epilogue{}))
	if err != nil {
		c.name = strings.TrimSuffix(c.name, ")") + fmt.Sprintf("; bfloat16 3x3: none, %v)", err)
		return c
	}
	if strings.HasSuffix(c.name, ")") {
		c.name = strings.TrimSuffix(c.name, ")") + "; bfloat16 3x3: " + p.impl + ")"
	} else {
		c.name += " (bfloat16 3x3: " + p.impl + ")"
	}
	return c
}
