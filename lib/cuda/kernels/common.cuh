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

// DETLAB_MAX_BLOCK is the largest block the reduction kernels accept.
#define DETLAB_MAX_BLOCK 1024

#endif  // DETLAB_COMMON_CUH
