// half.cu: float32 -> 16-bit operands for the reduced-precision GEMMs
// (cublasGemmEx with CUDA_R_16BF or CUDA_R_16F inputs) of autocast regions:
// plain conversion, and im2col straight to 16 bits.
//
// Each value is rounded exactly as lib/nn's RoundBF16 / RoundFP16
// (detlab_round_bf16_f / detlab_round_fp16_f of ops.h: ties to even, NaN
// stays NaN, fp16 overflow to +-Inf, fp16 subnormals kept) and the result,
// which the 16-bit format holds exactly, is stored as its 16-bit encoding.
// Only integer operations follow the rounding, so the encodings are the
// same on the GPU and in hostcheck's g++ build.
#include "common.cuh"

// detlab_bf16_bits is the bfloat16 encoding of RoundBF16(v): its high 16
// bits (RoundBF16 clears the low ones; a NaN keeps its quiet bit there).
DETLAB_HD unsigned short detlab_bf16_bits(float v) {
  return (unsigned short)(detlab_f2u(detlab_round_bf16_f(v)) >> 16);
}

// detlab_fp16_bits is the IEEE binary16 encoding of RoundFP16(v): sign,
// 5-bit exponent (bias 15), 10-bit mantissa. A NaN becomes a quiet NaN
// keeping its sign and the top 9 payload bits; +-Inf (and overflow) the
// infinities; values below 2^-14 the subnormals m*2^-24.
DETLAB_HD unsigned short detlab_fp16_bits(float v) {
  const unsigned b = detlab_f2u(detlab_round_fp16_f(v));
  const unsigned sign = (b >> 16) & 0x8000u;
  const unsigned a = b & 0x7fffffffu;
  if (a > 0x7f800000u) return (unsigned short)(sign | 0x7e00u | ((a >> 13) & 0x1ffu));  // NaN
  if (a == 0x7f800000u) return (unsigned short)(sign | 0x7c00u);                        // +-Inf
  if (a >= 0x38800000u) {  // normal: rebias the exponent (127 -> 15), keep 10 mantissa bits
    return (unsigned short)(sign | (((a >> 23) - 112u) << 10) | ((a >> 13) & 0x3ffu));
  }
  if (a == 0) return (unsigned short)sign;
  // Subnormal: the rounded value is m*2^-24 with m < 1024 and float32
  // exponent e in [103, 112]; m is the 24-bit significand shifted right by
  // 126-e (exact: the low bits are zero after rounding).
  const unsigned e = a >> 23;
  const unsigned sig = (a & 0x7fffffu) | 0x800000u;
  return (unsigned short)(sign | (sig >> (126u - e)));
}

// detlab_half_bits encodes v as bfloat16 (BF16) or binary16.
template <bool BF16>
DETLAB_HD unsigned short detlab_half_bits(float v) {
  return BF16 ? detlab_bf16_bits(v) : detlab_fp16_bits(v);
}

// detlab_im2col_nat returns element i of the (C*KH*KW, N*ldn) patch
// matrix of the images x (N,C,H,W): row (c*KH+kh)*KW+kw, column
// n*ldn + oh*OW + ow (image n's columns side by side, each image's run
// padded with zeros to ldn >= OH*OW columns).
template <class I>
DETLAB_HD float detlab_im2col_nat(const float* x, I i, int N, int C, int H, int W, int KH, int KW, int SH, int SW,
                                  int PH, int PW, int OH, int OW, int ldn) {
  const int j = (int)(i % (I)ldn);
  if (j >= OH * OW) return 0.0f;
  const int ow = j % OW;
  const int oh = j / OW;
  I t = i / (I)ldn;
  const detlab_i64 n = (detlab_i64)(t % (I)N);
  t /= (I)N;
  const int kw = (int)(t % (I)KW);
  t /= (I)KW;
  const int kh = (int)(t % (I)KH);
  const detlab_i64 c = (detlab_i64)(t / (I)KH);
  const int ih = oh * SH - PH + kh;
  const int iw = ow * SW - PW + kw;
  if (ih < 0 || ih >= H || iw < 0 || iw >= W) return 0.0f;
  return x[((n * C + c) * H + ih) * W + iw];
}

template <bool BF16>
__device__ __forceinline__ void detlab_to_half(const float* x, unsigned short* y, int n) {
  DETLAB_GRID_STRIDE(i, n) { y[i] = detlab_half_bits<BF16>(x[i]); }
}

template <bool BF16>
__device__ __forceinline__ void detlab_im2col_half(const float* x, unsigned short* col, int N, int C, int H, int W,
                                                   int KH, int KW, int SH, int SW, int PH, int PW, int OH,
                                                   int OW, int ldn) {
  DETLAB_FOR_EACH(i, (detlab_i64)N * C * KH * KW * ldn, {
    col[i] = detlab_half_bits<BF16>(detlab_im2col_nat(x, i, N, C, H, W, KH, KW, SH, SW, PH, PW, OH, OW, ldn));
  })
}

extern "C" __global__ void detlab_to_bf16(const float* x, unsigned short* y, int n) { detlab_to_half<true>(x, y, n); }

extern "C" __global__ void detlab_to_fp16(const float* x, unsigned short* y, int n) {
  detlab_to_half<false>(x, y, n);
}

extern "C" __global__ void detlab_im2col_bf16(const float* x, unsigned short* col, int N, int C, int H, int W,
                                              int KH, int KW, int SH, int SW, int PH, int PW, int OH, int OW, int ldn) {
  detlab_im2col_half<true>(x, col, N, C, H, W, KH, KW, SH, SW, PH, PW, OH, OW, ldn);
}

extern "C" __global__ void detlab_im2col_fp16(const float* x, unsigned short* col, int N, int C, int H, int W,
                                              int KH, int KW, int SH, int SW, int PH, int PW, int OH, int OW, int ldn) {
  detlab_im2col_half<false>(x, col, N, C, H, W, KH, KW, SH, SW, PH, PW, OH, OW, ldn);
}
