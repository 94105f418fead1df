// norm.cu: the batch-norm kernels (statistics and the per-channel affine
// map, with the ReLU that usually follows fused in).
#include "common.cuh"

extern "C" __global__ void detlab_channel_stats(const float* x, int N, int C, int HW, double* mean,
                                                double* var) {
  __shared__ double s[DETLAB_MAX_BLOCK];
  const unsigned t = threadIdx.x, nt = blockDim.x;
  const double m = (double)N * HW;
  for (int c = blockIdx.x; c < C; c += gridDim.x) {  // uniform across the block
    s[t] = detlab_channel_partial_sum(x, N, C, HW, c, t, nt);
    __syncthreads();
    for (unsigned k = 1; k < nt; k <<= 1) {
      detlab_tree_step(s, t, k, nt);
      __syncthreads();
    }
    const double mu = s[0] / m;
    __syncthreads();  // every thread has read s[0] before it is overwritten
    s[t] = detlab_channel_partial_sq(x, N, C, HW, c, mu, t, nt);
    __syncthreads();
    for (unsigned k = 1; k < nt; k <<= 1) {
      detlab_tree_step(s, t, k, nt);
      __syncthreads();
    }
    if (t == 0) {
      mean[c] = mu;
      var[c] = s[0] / m;
    }
    __syncthreads();  // s is reused for the next channel
  }
}

extern "C" __global__ void detlab_channel_affine(const float* x, float* y, int N, int C, int HW,
                                                 const float* scale, const float* shift, int relu) {
  DETLAB_FOR_EACH(i, (detlab_i64)N * C * HW, {
    const int c = (int)((i / HW) % C);
    float o = DETLAB_ADD(DETLAB_MUL(x[i], scale[c]), shift[c]);
    if (relu) o = detlab_relu_f(o);
    y[i] = o;
  })
}
