// epilogue.cu: the fused convolution's epilogue (lib/nn's ConvEpilogue:
// a folded or frozen BatchNorm's per-channel scale and shift, the residual
// sum of a ResNet block, the ReLU), one pass over the GEMM's output.
#include "common.cuh"

// detlab_conv_epilogue_at is lib/nn's applyConvEpilogue for one element:
// v*s + t (two roundings, as CPU.ChannelAffine), then + r when there is a
// residual, then the ReLU (NaN passes, -0 becomes +0). A missing scale is
// 1 and a missing shift 0, which are still applied (v*1 + 0 maps -0 to
// +0, as lib/nn does); a missing residual is not added.
DETLAB_HD float detlab_conv_epilogue_at(float v, float s, float t, const float* r, int relu) {
  v = DETLAB_ADD(DETLAB_MUL(v, s), t);
  if (r) v = DETLAB_ADD(v, *r);
  if (relu) v = detlab_relu_f(v);
  return v;
}

extern "C" __global__ void detlab_conv_epilogue(float* y, const float* scale, const float* shift,
                                                const float* residual, int N, int K, int HW, int relu) {
  DETLAB_FOR_EACH(i, (detlab_i64)N * K * HW, {
    const int k = (int)((i / HW) % K);
    y[i] = detlab_conv_epilogue_at(y[i], scale ? scale[k] : 1.0f, shift ? shift[k] : 0.0f,
                                   residual ? residual + i : (const float*)0, relu);
  })
}
