// norm.cu: the batch-norm kernels (statistics and the per-channel affine
// map, with the ReLU that usually follows fused in).
#include "common.cuh"

// detlab_block_mean_var leaves channel c's mean and biased variance in
// *mu and *var for every thread of the block, in two passes (the sum, then
// the squared deviations from the mean; float64 tree sums in s). Every
// thread of the block calls it: it synchronizes the block, and returns
// with s free for reuse.
__device__ __forceinline__ void detlab_block_mean_var(const float* x, int N, int C, int HW, int c, double* s,
                                                      unsigned t, unsigned nt, double* mu, double* var) {
  const double m = (double)N * HW;
  s[t] = detlab_channel_partial_sum(x, N, C, HW, c, t, nt);
  __syncthreads();
  for (unsigned k = 1; k < nt; k <<= 1) {
    detlab_tree_step(s, t, k, nt);
    __syncthreads();
  }
  const double mean = s[0] / m;
  __syncthreads();  // every thread has read s[0] before it is overwritten
  s[t] = detlab_channel_partial_sq(x, N, C, HW, c, mean, t, nt);
  __syncthreads();
  for (unsigned k = 1; k < nt; k <<= 1) {
    detlab_tree_step(s, t, k, nt);
    __syncthreads();
  }
  *mu = mean;
  *var = s[0] / m;
  __syncthreads();  // every thread has read s[0] before s is reused
}

extern "C" __global__ void detlab_channel_stats(const float* x, int N, int C, int HW, double* mean,
                                                double* var) {
  __shared__ double s[DETLAB_MAX_BLOCK];
  const unsigned t = threadIdx.x, nt = blockDim.x;
  for (int c = blockIdx.x; c < C; c += gridDim.x) {  // uniform across the block
    double mu, v;
    detlab_block_mean_var(x, N, C, HW, c, s, t, nt, &mu, &v);
    if (t == 0) {
      mean[c] = mu;
      var[c] = v;
    }
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

extern "C" __global__ void detlab_bn_train_stats(const float* x, int N, int C, int HW, const float* gamma,
                                                 const float* beta, float* run_mean, float* run_var, double momentum,
                                                 double eps, float* stats, float* affine) {
  __shared__ double s[DETLAB_MAX_BLOCK];
  const unsigned t = threadIdx.x, nt = blockDim.x;
  const double m = (double)N * HW;
  for (int c = blockIdx.x; c < C; c += gridDim.x) {  // uniform across the block
    double mu, v;
    detlab_block_mean_var(x, N, C, HW, c, s, t, nt, &mu, &v);
    if (t == 0) detlab_bn_finish(c, C, mu, v, m, gamma, beta, run_mean, run_var, momentum, eps, stats, affine);
  }
}

extern "C" __global__ void detlab_bn_backward_sums(const float* x, const float* y, const float* dy,
                                                   const float* stats, const float* gamma, int N, int C, int HW,
                                                   int relu, float* dgamma, float* dbeta, double* coef) {
  __shared__ double s[DETLAB_MAX_BLOCK];
  __shared__ double q[DETLAB_MAX_BLOCK];
  const unsigned t = threadIdx.x, nt = blockDim.x;
  const double m = (double)N * HW;
  for (int c = blockIdx.x; c < C; c += gridDim.x) {  // uniform across the block
    detlab_bn_partial(x, y, dy, N, C, HW, c, detlab_bn_mean(stats, c, C), relu, t, nt, &s[t], &q[t]);
    __syncthreads();
    for (unsigned k = 1; k < nt; k <<= 1) {
      detlab_tree_step(s, t, k, nt);
      detlab_tree_step(q, t, k, nt);
      __syncthreads();
    }
    if (t == 0) detlab_bn_backward_finish(c, C, s[0], q[0], m, stats, gamma, dgamma, dbeta, coef);
    __syncthreads();  // s and q are reused for the next channel
  }
}

extern "C" __global__ void detlab_bn_backward_dx(const float* x, const float* y, const float* dy, const float* stats,
                                                 const double* coef, float* dx, int N, int C, int HW, int relu) {
  DETLAB_FOR_EACH(i, (detlab_i64)N * C * HW, {
    const int c = (int)((i / HW) % C);
    const float g = detlab_bn_grad(dy[i], relu ? y[i] : 0.0f, relu);
    dx[i] = detlab_bn_dx(dx[i], x[i], g, detlab_bn_mean(stats, c, C), detlab_bn_invstd(stats, c, C), coef[c],
                         coef[C + c], coef[2 * C + c]);
  })
}
