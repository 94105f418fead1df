// elementwise.cu: autocast rounding, additions and ReLU.
#include "common.cuh"

extern "C" __global__ void detlab_round_bf16(const float* x, float* y, int n) {
  DETLAB_GRID_STRIDE(i, n) { y[i] = detlab_round_bf16_f(x[i]); }
}

extern "C" __global__ void detlab_round_fp16(const float* x, float* y, int n) {
  DETLAB_GRID_STRIDE(i, n) { y[i] = detlab_round_fp16_f(x[i]); }
}

extern "C" __global__ void detlab_add(const float* a, const float* b, float* y, int n, int relu) {
  DETLAB_GRID_STRIDE(i, n) {
    const float v = DETLAB_ADD(a[i], b[i]);
    y[i] = relu ? detlab_relu_f(v) : v;
  }
}

extern "C" __global__ void detlab_relu(const float* x, float* y, int n) {
  DETLAB_GRID_STRIDE(i, n) { y[i] = detlab_relu_f(x[i]); }
}

extern "C" __global__ void detlab_relu_backward(const float* y, const float* dy, float* dx, int n) {
  DETLAB_GRID_STRIDE(i, n) {
    if (y[i] > 0.0f) dx[i] = DETLAB_ADD(dx[i], dy[i]);
  }
}
