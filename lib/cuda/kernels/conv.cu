// conv.cu: the convolution kernels (im2col, col2im, bias forward and
// backward); the GEMMs between them are cuBLAS's.
#include "common.cuh"

extern "C" __global__ void detlab_im2col(const float* x, float* col, int C, int H, int W, int KH, int KW,
                                         int SH, int SW, int PH, int PW, int OH, int OW) {
  DETLAB_FOR_EACH(i, (detlab_i64)C * KH * KW * OH * OW, {
    col[i] = detlab_im2col_at(x, i, C, H, W, KH, KW, SH, SW, PH, PW, OH, OW);
  })
}

extern "C" __global__ void detlab_col2im(const float* col, float* dx, int C, int H, int W, int KH, int KW,
                                         int SH, int SW, int PH, int PW, int OH, int OW) {
  DETLAB_FOR_EACH(i, (detlab_i64)C * H * W, {
    dx[i] = detlab_col2im_at(col, dx[i], i, C, H, W, KH, KW, SH, SW, PH, PW, OH, OW);
  })
}

extern "C" __global__ void detlab_bias_add(float* y, const float* bias, int N, int K, int HW) {
  DETLAB_FOR_EACH(i, (detlab_i64)N * K * HW, {
    const int k = (int)((i / HW) % K);
    y[i] = DETLAB_ADD(y[i], bias[k]);
  })
}

extern "C" __global__ void detlab_channel_sum_add(const float* x, float* out, int N, int C, int HW) {
  __shared__ double s[DETLAB_MAX_BLOCK];
  const unsigned t = threadIdx.x, nt = blockDim.x;
  for (int c = blockIdx.x; c < C; c += gridDim.x) {  // uniform across the block
    s[t] = detlab_channel_partial_sum(x, N, C, HW, c, t, nt);
    __syncthreads();
    for (unsigned k = 1; k < nt; k <<= 1) {
      detlab_tree_step(s, t, k, nt);
      __syncthreads();
    }
    if (t == 0) out[c] = DETLAB_ADD(out[c], (float)s[0]);
    __syncthreads();  // s is reused for the next channel
  }
}
