// pool.cu: max pooling forward (with the argmax the backward needs) and
// backward.
#include "common.cuh"

extern "C" __global__ void detlab_maxpool2d(const float* x, float* y, int* arg, int planes, int H, int W,
                                            int KH, int KW, int SH, int SW, int PH, int PW, int OH, int OW) {
  DETLAB_FOR_EACH(i, (detlab_i64)planes * OH * OW, {
    int a;
    y[i] = detlab_maxpool_at(x, i, &a, H, W, KH, KW, SH, SW, PH, PW, OH, OW);
    if (arg != nullptr) arg[i] = a;
  })
}

// Overlapping windows (stride < kernel) can send several outputs to one
// input, hence atomicAdd; the order of those additions is not fixed, so dx
// may differ from the CPU's in the last bits there. An arg outside the
// plane (never written by detlab_maxpool2d for a valid geometry) is
// skipped rather than written out of bounds.
extern "C" __global__ void detlab_maxpool2d_backward(const float* dy, float* dx, const int* arg, int planes,
                                                     int H, int W, int OH, int OW) {
  const detlab_i64 ohw = (detlab_i64)OH * OW, hw = (detlab_i64)H * W;
  DETLAB_FOR_EACH(i, (detlab_i64)planes * ohw, {
    const detlab_i64 p = (detlab_i64)(i / (decltype(i))ohw);  // ohw <= n: fits i's type
    const int a = arg[i];
    if (a >= 0 && a < hw) atomicAdd(dx + p * hw + a, dy[i]);
  })
}
