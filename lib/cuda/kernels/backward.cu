// backward.cu: the backward passes of lib/nn's fused ConvBN (the frozen
// BatchNorm's scale and the ReLU mask on the output gradient, the residual
// gradient) and Linear's bias gradient, with lib/nn's host arithmetic bit
// for bit.
#include "common.cuh"

extern "C" __global__ void detlab_convbn_backward(const float* dy, const float* y, const float* scale, float* dc,
                                                  float* dres, int N, int K, int HW, int relu) {
  DETLAB_FOR_EACH(i, (detlab_i64)N * K * HW, {
    const float d = dy[i];
    const bool pass = !relu || y[i] > 0.0f;  // false for NaN, as lib/nn's !(y > 0)
    // Skipped, not an added 0: -0 + 0 would become +0.
    if (dres && pass) dres[i] = DETLAB_ADD(dres[i], d);
    if (dc) {
      const int k = (int)((i / HW) % K);
      dc[i] = DETLAB_MUL(pass ? d : 0.0f, scale[k]);
    }
  })
}

extern "C" __global__ void detlab_bias_grad(const float* dy, float* db, int rows, int cols) {
  DETLAB_FOR_EACH(j, (detlab_i64)cols, {
    double s = 0;
    for (detlab_i64 r = 0; r < rows; r++) s += (double)dy[r * cols + j];
    db[j] = DETLAB_ADD(db[j], (float)s);
  })
}
