// ops.h: the per-element arithmetic of detlab's kernels as __host__
// __device__ inline functions. The __global__ kernels in the .cu files are
// thin grid-stride wrappers around these, so the same code compiles with
// g++ as plain C++ and lib/cuda/hostcheck compares it with lib/nn's CPU
// kernels on random shapes (there is no GPU in CI).
//
// Floating point: products and sums are written with DETLAB_MUL and
// DETLAB_ADD, which on the device are __fmul_rn/__fadd_rn: nvcc may not
// contract them into FMAs, so every elementwise result is bit-identical to
// the Go CPU code (Go on amd64 does not fuse either).
//
// Indices: the helpers that split a flat index into coordinates are
// templates on the index type I, so a kernel whose work fits in 2^31 uses
// 32-bit unsigned division (64-bit division is an emulated, much slower
// routine on the GPU) and falls back to 64-bit beyond; memory offsets are
// always computed in 64 bits.
#ifndef DETLAB_OPS_H
#define DETLAB_OPS_H

#ifdef __CUDACC__
#define DETLAB_HD __host__ __device__ __forceinline__
#else
#include <cmath>
#include <cstring>
#define DETLAB_HD inline
#endif

#if defined(__CUDA_ARCH__)
#define DETLAB_MUL(a, b) __fmul_rn((a), (b))
#define DETLAB_ADD(a, b) __fadd_rn((a), (b))
#define DETLAB_DMUL(a, b) __dmul_rn((a), (b))
#define DETLAB_DADD(a, b) __dadd_rn((a), (b))
#define DETLAB_DSUB(a, b) __dsub_rn((a), (b))
#else
#define DETLAB_MUL(a, b) ((a) * (b))
#define DETLAB_ADD(a, b) ((a) + (b))
#define DETLAB_DMUL(a, b) ((a) * (b))
#define DETLAB_DADD(a, b) ((a) + (b))
#define DETLAB_DSUB(a, b) ((a) - (b))
#endif

typedef long long detlab_i64;

DETLAB_HD unsigned detlab_f2u(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  unsigned u;
  std::memcpy(&u, &f, sizeof u);
  return u;
#endif
}

DETLAB_HD float detlab_u2f(unsigned u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
#endif
}

// detlab_relu_f is max(v, 0) with NaN propagating (lib/nn's
// `!(v > 0) && v == v`).
DETLAB_HD float detlab_relu_f(float v) { return (!(v > 0.0f) && v == v) ? 0.0f : v; }

// detlab_im2col_at returns element i of the (C*KH*KW, OH*OW) patch matrix
// of x (C,H,W): row (c*KH+kh)*KW+kw, column oh*OW+ow.
template <class I>
DETLAB_HD float detlab_im2col_at(const float* x, I i, int C, int H, int W, int KH, int KW, int SH, int SW, int PH,
                                 int PW, int OH, int OW) {
  (void)C;
  const int ow = (int)(i % (I)OW);
  I t = i / (I)OW;
  const int oh = (int)(t % (I)OH);
  t /= (I)OH;
  const int kw = (int)(t % (I)KW);
  t /= (I)KW;
  const int kh = (int)(t % (I)KH);
  const detlab_i64 c = (detlab_i64)(t / (I)KH);
  const int ih = oh * SH - PH + kh;
  const int iw = ow * SW - PW + kw;
  if (ih < 0 || ih >= H || iw < 0 || iw >= W) return 0.0f;
  return x[(c * H + ih) * W + iw];
}

// detlab_col2im_at returns dx[i] plus every entry of col (C*KH*KW, OH*OW)
// that folds onto input element i (c, ih, iw), added in (kh, kw) order:
// the order lib/nn's col2im adds them, so the sum is bit-identical.
template <class I>
DETLAB_HD float detlab_col2im_at(const float* col, float dxi, I i, int C, int H, int W, int KH, int KW, int SH,
                                 int SW, int PH, int PW, int OH, int OW) {
  (void)C;
  const int iw = (int)(i % (I)W);
  I t = i / (I)W;
  const int ih = (int)(t % (I)H);
  const detlab_i64 c = (detlab_i64)(t / (I)H);
  const detlab_i64 ohw = (detlab_i64)OH * OW;
  float acc = dxi;
  for (int kh = 0; kh < KH; kh++) {
    const int th = ih + PH - kh;  // = oh*SH
    if (th < 0 || th % SH != 0) continue;
    const int oh = th / SH;
    if (oh >= OH) continue;
    for (int kw = 0; kw < KW; kw++) {
      const int tw = iw + PW - kw;  // = ow*SW
      if (tw < 0 || tw % SW != 0) continue;
      const int ow = tw / SW;
      if (ow >= OW) continue;
      acc = DETLAB_ADD(acc, col[((c * KH + kh) * KW + kw) * ohw + (detlab_i64)oh * OW + ow]);
    }
  }
  return acc;
}

// detlab_maxpool_at computes output i (p, oh, ow) of a max pool over x
// (planes,H,W): the maximum, and in *arg the flat index within the plane
// of its first occurrence in row-major window order. Padding acts as -inf;
// a NaN wins its window. Mirrors lib/nn's CPU.MaxPool2d line by line.
template <class I>
DETLAB_HD float detlab_maxpool_at(const float* x, I i, int* arg, int H, int W, int KH, int KW, int SH, int SW,
                                  int PH, int PW, int OH, int OW) {
  const int ow = (int)(i % (I)OW);
  const I t = i / (I)OW;
  const int oh = (int)(t % (I)OH);
  const detlab_i64 p = (detlab_i64)(t / (I)OH);
  const float* plane = x + p * H * W;
  const int h0 = oh * SH - PH, w0 = ow * SW - PW;
  const int hs = h0 > 0 ? h0 : 0, he = h0 + KH < H ? h0 + KH : H;
  const int ws = w0 > 0 ? w0 : 0, we = w0 + KW < W ? w0 + KW : W;
  float best = -INFINITY;
  int bi = hs * W + ws;
  for (int ih = hs; ih < he; ih++) {
    for (int iw = ws; iw < we; iw++) {
      const float v = plane[ih * W + iw];
      if (v > best || v != v) {
        best = v;
        bi = ih * W + iw;
        if (v != v) {
          ih = he;  // a NaN wins: leave both loops
          break;
        }
      }
    }
  }
  *arg = bi;
  return best;
}

// detlab_round_bf16_f is lib/nn's RoundBF16: round to nearest even in
// bfloat16, widened back; NaN stays a (quiet) NaN, Inf stays Inf.
DETLAB_HD float detlab_round_bf16_f(float v) {
  unsigned b = detlab_f2u(v);
  if ((b & 0x7f800000u) == 0x7f800000u) {  // Inf or NaN
    if ((b & 0x007fffffu) != 0) b |= 0x00400000u;
    return detlab_u2f(b & ~0xffffu);
  }
  b += 0x7fffu + ((b >> 16) & 1u);
  return detlab_u2f(b & ~0xffffu);
}

// detlab_round_fp16_f is lib/nn's RoundFP16: round to nearest even in IEEE
// binary16 (subnormals included), widened back; |v| >= 65520 gives +-Inf.
DETLAB_HD float detlab_round_fp16_f(float v) {
  const unsigned b0 = detlab_f2u(v);
  const unsigned abits = b0 & 0x7fffffffu;
  if (abits >= 0x7f800000u) return v;  // NaN or Inf
  if (abits >= 0x38800000u) {          // |v| >= 2^-14, the smallest normal
    unsigned b = b0 + 0xfffu + ((b0 >> 13) & 1u);
    b &= ~0x1fffu;
    if ((b & 0x7fffffffu) > 0x477fe000u) {  // |r| > 65504
      return detlab_u2f((b0 & 0x80000000u) | 0x7f800000u);
    }
    return detlab_u2f(b);
  }
  // Subnormal range: multiples of 2^-24. Both scalings are exact.
  return rintf(v * 16777216.0f) * (1.0f / 16777216.0f);
}

// detlab_sgd_at applies torch.optim.SGD's update to element i, as lib/train's
// SGD.update: p, g, buf are the parameter, gradient and momentum buffer
// (buf unused when momentum == 0). damp1 is 1-dampening.
DETLAB_HD void detlab_sgd_at(float* p, const float* g, float* buf, detlab_i64 i, float lr, float momentum,
                             float damp1, float weight_decay, int nesterov, int first_step) {
  float d = g[i];
  if (weight_decay != 0.0f) d = DETLAB_ADD(d, DETLAB_MUL(weight_decay, p[i]));
  if (momentum != 0.0f) {
    float bv;
    if (first_step) {
      bv = d;
    } else {
      bv = DETLAB_ADD(DETLAB_MUL(momentum, buf[i]), DETLAB_MUL(damp1, d));
    }
    buf[i] = bv;
    if (nesterov) {
      d = DETLAB_ADD(d, DETLAB_MUL(momentum, bv));
    } else {
      d = bv;
    }
  }
  p[i] = p[i] - DETLAB_MUL(lr, d);
}

// detlab_channel_partial_sum is thread t's (of nt) share of channel c's sum
// over x (N,C,HW): elements j = t, t+nt, ... of the N*HW in the channel.
DETLAB_HD double detlab_channel_partial_sum(const float* x, int N, int C, int HW, int c, unsigned t, unsigned nt) {
  double s = 0;
  if (N <= 0 || HW <= 0) return s;
  // j = n*HW + hw walks t, t+nt, ...; (n, hw) is stepped without dividing.
  const int dn = (int)(nt / (unsigned)HW), dhw = (int)(nt % (unsigned)HW);
  for (detlab_i64 n = t / (unsigned)HW, hw = t % (unsigned)HW; n < N;) {
    s += (double)x[(n * C + c) * HW + hw];
    n += dn;
    hw += dhw;
    if (hw >= HW) {
      hw -= HW;
      n++;
    }
  }
  return s;
}

// detlab_channel_partial_sq is thread t's share of channel c's sum of
// squared deviations from mu.
DETLAB_HD double detlab_channel_partial_sq(const float* x, int N, int C, int HW, int c, double mu, unsigned t,
                                           unsigned nt) {
  double q = 0;
  if (N <= 0 || HW <= 0) return q;
  const int dn = (int)(nt / (unsigned)HW), dhw = (int)(nt % (unsigned)HW);
  for (detlab_i64 n = t / (unsigned)HW, hw = t % (unsigned)HW; n < N;) {
    const double d = (double)x[(n * C + c) * HW + hw] - mu;
    q += d * d;
    n += dn;
    hw += dhw;
    if (hw >= HW) {
      hw -= HW;
      n++;
    }
  }
  return q;
}

// detlab_tree_step is thread t's part of level k (1, 2, 4, ...) of the
// pairwise reduction of s[0:nt] into s[0]; levels are separated by a
// barrier. Any nt works.
DETLAB_HD void detlab_tree_step(double* s, unsigned t, unsigned k, unsigned nt) {
  if ((t & (2 * k - 1)) == 0 && t + k < nt) s[t] += s[t + k];
}

// --- BatchNorm in training mode on the device ---
//
// stats (4*C floats) holds each channel's float64 mean and invstd as
// float32 pairs: [0,C) mean rounded to float32, [C,2C) the remainder
// (mean - hi) rounded, [2C,3C) and [3C,4C) the same for invstd; hi + lo
// carries ~48 bits, and float32 slots keep the buffer free of alignment
// needs. The float64 arithmetic below is lib/nn's host arithmetic
// (batchnorm.go) written with DETLAB_D* (no FMA contraction), so given
// the same sums it rounds to the same float32 results.

DETLAB_HD double detlab_bn_mean(const float* stats, int c, int C) { return (double)stats[c] + (double)stats[C + c]; }

DETLAB_HD double detlab_bn_invstd(const float* stats, int c, int C) {
  return (double)stats[2 * C + c] + (double)stats[3 * C + c];
}

// detlab_bn_finish is channel c's train-mode epilogue from its mean mu and
// biased variance var over m values: invstd = 1/sqrt(var+eps); running
// statistics rm, rv updated with momentum (rv with the unbiased variance
// var*m/(m-1)); stats as above; affine[c] = gamma*invstd and affine[C+c]
// = beta - mu*gamma*invstd, the normalisation's scale and shift.
DETLAB_HD void detlab_bn_finish(int c, int C, double mu, double var, double m, const float* gamma, const float* beta,
                                float* rm, float* rv, double momentum, double eps, float* stats, float* affine) {
  const double is = 1.0 / sqrt(DETLAB_DADD(var, eps));
  const double keep = DETLAB_DSUB(1.0, momentum), unbias = m / DETLAB_DSUB(m, 1.0);
  rm[c] = (float)DETLAB_DADD(DETLAB_DMUL(keep, (double)rm[c]), DETLAB_DMUL(momentum, mu));
  rv[c] = (float)DETLAB_DADD(DETLAB_DMUL(keep, (double)rv[c]), DETLAB_DMUL(DETLAB_DMUL(momentum, var), unbias));
  const float mh = (float)mu, ih = (float)is;
  stats[c] = mh;
  stats[C + c] = (float)DETLAB_DSUB(mu, (double)mh);
  stats[2 * C + c] = ih;
  stats[3 * C + c] = (float)DETLAB_DSUB(is, (double)ih);
  const double s = DETLAB_DMUL((double)gamma[c], is);
  affine[c] = (float)s;
  affine[C + c] = (float)DETLAB_DSUB((double)beta[c], DETLAB_DMUL(mu, s));
}

// detlab_bn_grad is the output gradient BatchNorm's backward sees: dy, or
// with relu (a fused ReLU after it) +0 where the output y is not positive.
DETLAB_HD float detlab_bn_grad(float dy, float y, int relu) { return (relu && !(y > 0.0f)) ? 0.0f : dy; }

// detlab_bn_partial is thread t's (of nt) share of channel c's sums of g
// and g*(x-mu), g = detlab_bn_grad(dy, y, relu), stepping as
// detlab_channel_partial_sum.
DETLAB_HD void detlab_bn_partial(const float* x, const float* y, const float* dy, int N, int C, int HW, int c,
                                 double mu, int relu, unsigned t, unsigned nt, double* sdy, double* sdyx) {
  double s = 0, q = 0;
  if (N > 0 && HW > 0) {
    const int dn = (int)(nt / (unsigned)HW), dhw = (int)(nt % (unsigned)HW);
    for (detlab_i64 n = t / (unsigned)HW, hw = t % (unsigned)HW; n < N;) {
      const detlab_i64 i = (n * C + c) * HW + hw;
      const double d = (double)detlab_bn_grad(dy[i], relu ? y[i] : 0.0f, relu);
      s = DETLAB_DADD(s, d);
      q = DETLAB_DADD(q, DETLAB_DMUL(d, DETLAB_DSUB((double)x[i], mu)));
      n += dn;
      hw += dhw;
      if (hw >= HW) {
        hw -= HW;
        n++;
      }
    }
  }
  *sdy = s;
  *sdyx = q;
}

// detlab_bn_backward_finish is channel c's backward epilogue from its sums
// sdy and sdyx (of g and g*(x-mean)) over m values: dgamma[c] +=
// sdyx*invstd, dbeta[c] += sdy (float32 adds; NULL: skipped) and coef =
// k = gamma*invstd (0 without gamma), mean(g), mean(g*xhat) at c, C+c,
// 2C+c.
DETLAB_HD void detlab_bn_backward_finish(int c, int C, double sdy, double sdyx, double m, const float* stats,
                                         const float* gamma, float* dgamma, float* dbeta, double* coef) {
  const double is = detlab_bn_invstd(stats, c, C);
  sdyx = DETLAB_DMUL(sdyx, is);
  if (dgamma) dgamma[c] = DETLAB_ADD(dgamma[c], (float)sdyx);
  if (dbeta) dbeta[c] = DETLAB_ADD(dbeta[c], (float)sdy);
  coef[c] = gamma ? DETLAB_DMUL((double)gamma[c], is) : 0.0;
  coef[C + c] = sdy / m;
  coef[2 * C + c] = sdyx / m;
}

// detlab_bn_dx is dx + k*(g - mean(g) - xhat*mean(g*xhat)) in float64,
// rounded to float32 and added in float32 (lib/nn's host loop).
DETLAB_HD float detlab_bn_dx(float dx, float x, float g, double mu, double is, double k, double mdy, double mdyx) {
  const double xhat = DETLAB_DMUL(DETLAB_DSUB((double)x, mu), is);
  const double v = DETLAB_DMUL(k, DETLAB_DSUB(DETLAB_DSUB((double)g, mdy), DETLAB_DMUL(xhat, mdyx)));
  return DETLAB_ADD(dx, (float)v);
}

#endif  // DETLAB_OPS_H
