// optim.cu: the SGD step and the gradient scaler's helpers.
#include "common.cuh"

extern "C" __global__ void detlab_sgd_step(float* p, const float* g, float* buf, int n, float lr,
                                           float momentum, float dampening, float weight_decay, int nesterov,
                                           int first_step) {
  // lib/train computes 1-dampening in float64 from a float64 dampening;
  // here it starts from dampening's float32 value, so results are
  // bit-identical whenever dampening is exact in float32 (0, the default).
  const float damp1 = (float)(1.0 - (double)dampening);
  DETLAB_GRID_STRIDE(i, n) {
    detlab_sgd_at(p, g, buf, i, lr, momentum, damp1, weight_decay, nesterov, first_step);
  }
}

extern "C" __global__ void detlab_nonfinite(const float* x, int n, int* flag) {
  DETLAB_GRID_STRIDE(i, n) {
    if ((detlab_f2u(x[i]) & 0x7f800000u) == 0x7f800000u) *flag = 1;  // every writer stores 1
  }
}

extern "C" __global__ void detlab_scale(float* x, int n, float s) {
  DETLAB_GRID_STRIDE(i, n) { x[i] = DETLAB_MUL(x[i], s); }
}
