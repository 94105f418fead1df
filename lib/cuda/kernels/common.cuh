// common.cuh: what every kernel source includes: the contract declarations,
// the per-element helpers and the grid-stride loop.
#ifndef DETLAB_COMMON_CUH
#define DETLAB_COMMON_CUH

#include "kernels.h"
#include "ops.h"

// DETLAB_GRID_STRIDE(i, n) loops i over [0, n) with 64-bit indices, each
// thread of the grid taking every (gridDim.x*blockDim.x)-th element, so
// any grid size is correct.
#define DETLAB_GRID_STRIDE(i, n)                                                           \
  for (detlab_i64 i = (detlab_i64)blockIdx.x * blockDim.x + threadIdx.x, detlab_n_ = (n); \
       i < detlab_n_; i += (detlab_i64)gridDim.x * blockDim.x)

// detlab_fits_u32 reports whether a grid-stride loop over n items can use
// 32-bit unsigned indices: every i + gridDim.x*blockDim.x stays below
// 2^32. (Building the CPU check with -DDETLAB_FORCE_I64 takes the 64-bit
// path everywhere, so both paths are tested.)
__device__ __forceinline__ bool detlab_fits_u32(detlab_i64 n) {
#ifdef DETLAB_FORCE_I64
  (void)n;
  return false;
#else
  return n + (detlab_i64)gridDim.x * blockDim.x <= 0xffffffffLL;
#endif
}

// DETLAB_GRID_STRIDE_AS is DETLAB_GRID_STRIDE with index type I.
#define DETLAB_GRID_STRIDE_AS(I, i, n)                                                       \
  for (I i = (I)blockIdx.x * (I)blockDim.x + (I)threadIdx.x, detlab_n_ = (I)(n); i < detlab_n_; \
       i += (I)gridDim.x * (I)blockDim.x)

// DETLAB_FOR_EACH(i, n, body) runs body for every i in [0, n) as a
// grid-stride loop, with 32-bit indices when they suffice (see
// detlab_fits_u32) and 64-bit ones otherwise: for kernels that divide i.
#define DETLAB_FOR_EACH(i, n, ...)                    \
  if (detlab_fits_u32(n)) {                           \
    DETLAB_GRID_STRIDE_AS(unsigned, i, n) __VA_ARGS__ \
  } else {                                            \
    DETLAB_GRID_STRIDE_AS(detlab_i64, i, n) __VA_ARGS__ \
  }

// DETLAB_MAX_BLOCK is the largest block the reduction kernels accept.
#define DETLAB_MAX_BLOCK 1024

#endif  // DETLAB_COMMON_CUH
