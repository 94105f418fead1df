// nms.cu: the suppression masks of non-maximum suppression, in the style
// of torchvision's csrc/ops/cuda/nms_kernel.cu (boxes sorted by score,
// 64-box column tiles staged in shared memory, one 64-bit mask word per
// box and tile), with the IoU arithmetic of lib/box.NMS, step by step, so
// that every decision is the Go code's bit for bit:
//
//	xx1 = max(ax1, bx1)  yy1 = max(ay1, by1)   (Go's max and min: NaN wins,
//	xx2 = min(ax2, bx2)  yy2 = min(ay2, by2)    max(-0, +0) = +0, min = -0)
//	w = max(xx2 - xx1, 0)  h = max(yy2 - yy1, 0)
//	inter = w * h
//	iou = inter / ((area_a + area_b) - inter)   area = (x2 - x1) * (y2 - y1)
//	suppressed when iou >= cut                  (NaN never suppresses)
//
// every operation rounded on its own (no FMA contraction, IEEE division,
// no flush to zero), as Go computes float32 on amd64.
#include "common.cuh"

#if defined(__CUDA_ARCH__)
#define DETLAB_NMS_SUB(a, b) __fsub_rn((a), (b))
#define DETLAB_NMS_DIV(a, b) __fdiv_rn((a), (b))
#else
#define DETLAB_NMS_SUB(a, b) ((a) - (b))
#define DETLAB_NMS_DIV(a, b) ((a) / (b))
#endif

// detlab_nms_max is Go's builtin max for two float32s: NaN if either is
// NaN, +0 for max(-0, +0) (CUDA's fmaxf returns the other operand for a
// NaN, which would change decisions).
DETLAB_HD float detlab_nms_max(float a, float b) {
  if (a != a) return a;
  if (b != b) return b;
  if (a == b) return (detlab_f2u(a) & 0x80000000u) ? b : a;
  return a > b ? a : b;
}

// detlab_nms_min is Go's builtin min: NaN if either is NaN, -0 for
// min(-0, +0).
DETLAB_HD float detlab_nms_min(float a, float b) {
  if (a != a) return a;
  if (b != b) return b;
  if (a == b) return (detlab_f2u(a) & 0x80000000u) ? a : b;
  return a < b ? a : b;
}

// detlab_nms_area is box.Box.Area: (x2 - x1) * (y2 - y1) in float32.
DETLAB_HD float detlab_nms_area(float x1, float y1, float x2, float y2) {
  return DETLAB_MUL(DETLAB_NMS_SUB(x2, x1), DETLAB_NMS_SUB(y2, y1));
}

// detlab_nms_suppresses reports whether kept box a suppresses box b: their
// IoU, computed as lib/box.NMS does, is >= cut.
DETLAB_HD bool detlab_nms_suppresses(float ax1, float ay1, float ax2, float ay2, float aarea, float bx1, float by1,
                                     float bx2, float by2, float barea, float cut) {
  const float xx1 = detlab_nms_max(ax1, bx1), yy1 = detlab_nms_max(ay1, by1);
  const float xx2 = detlab_nms_min(ax2, bx2), yy2 = detlab_nms_min(ay2, by2);
  const float w = detlab_nms_max(DETLAB_NMS_SUB(xx2, xx1), 0.0f);
  const float h = detlab_nms_max(DETLAB_NMS_SUB(yy2, yy1), 0.0f);
  const float inter = DETLAB_MUL(w, h);
  const float iou = DETLAB_NMS_DIV(inter, DETLAB_NMS_SUB(DETLAB_ADD(aarea, barea), inter));
  return iou >= cut;
}

// DETLAB_NMS_TILE is the number of column boxes of a tile: the bits of one
// mask word.
#define DETLAB_NMS_TILE 64

extern "C" __global__ void detlab_nms_mask(const float* boxes, int n, float cut, unsigned long long* mask) {
  __shared__ float col[5 * DETLAB_NMS_TILE];  // x1, y1, x2, y2, area of the tile's column boxes
  const int words = (n + DETLAB_NMS_TILE - 1) / DETLAB_NMS_TILE;
  const int rows = (int)blockDim.x;
  const detlab_i64 row_tiles = ((detlab_i64)n + rows - 1) / rows;
  const detlab_i64 tiles = row_tiles * words;
  // Every thread of a block walks the same tiles, so the barriers below
  // are reached by all of them.
  for (detlab_i64 t = blockIdx.x; t < tiles; t += gridDim.x) {
    const int w = (int)(t % words);
    const int r0 = (int)(t / words) * rows;
    const int c0 = w * DETLAB_NMS_TILE;
    const int cn = n - c0 < DETLAB_NMS_TILE ? n - c0 : DETLAB_NMS_TILE;
    const int i = r0 + (int)threadIdx.x;
    if (c0 + cn - 1 <= r0) {
      // No column box comes after any row box of the tile.
      if (i < n) mask[(detlab_i64)i * words + w] = 0ULL;
      continue;
    }
    __syncthreads();  // the previous tile's readers are done with col
    for (int k = (int)threadIdx.x; k < cn; k += rows) {
      const float* b = boxes + 4 * ((detlab_i64)c0 + k);
      col[k] = b[0];
      col[DETLAB_NMS_TILE + k] = b[1];
      col[2 * DETLAB_NMS_TILE + k] = b[2];
      col[3 * DETLAB_NMS_TILE + k] = b[3];
      col[4 * DETLAB_NMS_TILE + k] = detlab_nms_area(b[0], b[1], b[2], b[3]);
    }
    __syncthreads();
    if (i >= n) continue;
    const float* a = boxes + 4 * (detlab_i64)i;
    const float ax1 = a[0], ay1 = a[1], ax2 = a[2], ay2 = a[3];
    const float aarea = detlab_nms_area(ax1, ay1, ax2, ay2);
    unsigned long long bits = 0ULL;
    for (int k = i + 1 > c0 ? i + 1 - c0 : 0; k < cn; k++) {
      if (detlab_nms_suppresses(ax1, ay1, ax2, ay2, aarea, col[k], col[DETLAB_NMS_TILE + k],
                                col[2 * DETLAB_NMS_TILE + k], col[3 * DETLAB_NMS_TILE + k],
                                col[4 * DETLAB_NMS_TILE + k], cut)) {
        bits |= 1ULL << k;
      }
    }
    mask[(detlab_i64)i * words + w] = bits;
  }
}
