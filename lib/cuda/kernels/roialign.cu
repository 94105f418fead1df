// roialign.cu: torchvision's roi_align (aligned false and true, a fixed or
// the adaptive sampling ratio), forward and backward, bit for bit as
// lib/roialign's CPU kernels.
//
// lib/roialign computes each roi's stencil once: per output row ph the
// feature rows its samples touch with their summed linear weights, per
// output column pw the same for columns, then a bin is
// sum over (row, column) of (wy*wx*inv) * feature, with inv = 1/count.
// The three kernels here split that the same way:
//
//   detlab_roialign_layout    one thread per roi writes the stencil lists
//                             (the "geometry", layout below);
//   detlab_roialign_forward   one thread per output value sums its bin;
//   detlab_roialign_backward  one thread per feature-gradient pixel of 4
//                             channels gathers every (roi, ph, pw) whose
//                             stencil holds it, in lib/roialign's scatter order
//                             (roi, then ph, then pw), so no atomics: the
//                             gradient is deterministic and bit-identical
//                             to the CPU's.
//
// Geometry buffer (ints; weights and inv stored as float bits), for K rois,
// L = OH+OW lists of capacity cap:
//   meta:  K x 6    batch, ylo, yhi, xlo, xhi, bits(inv)   (row and column
//                   range of the stencil, ylo > yhi when empty)
//   lists: K x L x (1 + 2*cap)   count, idx[cap], bits(w)[cap]; list ph < OH
//                   holds rows, list OH+pw columns.
// cap must be at least the largest number of distinct pixels one list can
// hold: min(2*grid, size) along that axis (lib/cuda computes it).
#include "common.cuh"

#if defined(__CUDA_ARCH__)
#define DETLAB_DIV(a, b) __fdiv_rn((a), (b))
#else
#define DETLAB_DIV(a, b) ((a) / (b))
#endif

// detlab_roialign_list_words is the size in ints of one stencil list.
DETLAB_HD detlab_i64 detlab_roialign_list_words(int cap) { return 1 + 2 * (detlab_i64)cap; }

// detlab_roialign_list_at is the offset in the geometry of list j (row
// ph = j, or column pw = j-OH) of roi r.
DETLAB_HD detlab_i64 detlab_roialign_list_at(int K, int OH, int OW, int cap, detlab_i64 r, int j) {
  return 6 * (detlab_i64)K + (r * (OH + OW) + j) * detlab_roialign_list_words(cap);
}

// detlab_roialign_axis fills list (count, idx[cap], w[cap]) with the
// pixels the grid samples of bin p touch along one axis and their summed
// linear weights, exactly as lib/roialign's axisWeights: a sample outside
// [-1, size] contributes nothing, coordinates <= 0 clamp to 0, at or
// beyond the last pixel the sample snaps to it with weight 1; pixels are
// listed in the order first touched.
DETLAB_HD void detlab_roialign_axis(int* list, int cap, int p, detlab_i64 grid, float start, float bin, int size) {
  int n = 0;
  int* idx = list + 1;
  int* wb = list + 1 + cap;
  const float fsize = (float)size;
  const float origin = DETLAB_ADD(start, DETLAB_MUL((float)p, bin));
  auto add = [&](int i, float w) {
    for (int j = 0; j < n; j++) {
      if (idx[j] == i) {
        wb[j] = (int)detlab_f2u(DETLAB_ADD(detlab_u2f((unsigned)wb[j]), w));
        return;
      }
    }
    if (n < cap) {  // never full for a cap of min(2*grid, size)
      idx[n] = i;
      wb[n] = (int)detlab_f2u(w);
      n++;
    }
  };
  for (detlab_i64 i = 0; i < grid; i++) {
    float v = DETLAB_ADD(origin, DETLAB_DIV(DETLAB_MUL(DETLAB_ADD((float)i, 0.5f), bin), (float)grid));
    if (v < -1.0f || v > fsize) continue;
    if (v <= 0.0f) v = 0.0f;
    const int lo = (int)v;
    if (lo >= size - 1) {
      add(size - 1, 1.0f);
      continue;
    }
    const float l = DETLAB_ADD(v, -(float)lo);
    add(lo, DETLAB_ADD(1.0f, -l));
    add(lo + 1, l);
  }
  list[0] = n;
}

// detlab_roialign_grid is a sampling grid size: the ratio when positive,
// else ceil(extent/out) (torchvision's adaptive ratio).
DETLAB_HD detlab_i64 detlab_roialign_grid(int ratio, float extent, int out) {
  if (ratio > 0) return ratio;
  return (detlab_i64)ceilf(DETLAB_DIV(extent, (float)out));
}

// detlab_roialign_layout_roi writes roi r's meta and its OH+OW lists, with
// lib/roialign's layout arithmetic (float32, same order).
DETLAB_HD void detlab_roialign_layout_roi(const float* rois, int* geom, detlab_i64 r, int K, int H, int W, int OH,
                                          int OW, int ratio, float scale, int aligned, int cap) {
  const float* roi = rois + 5 * r;
  const float offset = aligned ? 0.5f : 0.0f;
  const float start_w = DETLAB_ADD(DETLAB_MUL(roi[1], scale), -offset);
  const float start_h = DETLAB_ADD(DETLAB_MUL(roi[2], scale), -offset);
  const float end_w = DETLAB_ADD(DETLAB_MUL(roi[3], scale), -offset);
  const float end_h = DETLAB_ADD(DETLAB_MUL(roi[4], scale), -offset);
  float roi_w = DETLAB_ADD(end_w, -start_w);
  float roi_h = DETLAB_ADD(end_h, -start_h);
  if (!aligned) {
    // Go's max(v, 1): a NaN stays NaN.
    roi_w = roi_w < 1.0f ? 1.0f : roi_w;
    roi_h = roi_h < 1.0f ? 1.0f : roi_h;
  }
  const float bin_h = DETLAB_DIV(roi_h, (float)OH);
  const float bin_w = DETLAB_DIV(roi_w, (float)OW);
  const detlab_i64 grid_h = detlab_roialign_grid(ratio, roi_h, OH);
  const detlab_i64 grid_w = detlab_roialign_grid(ratio, roi_w, OW);
  const detlab_i64 count = grid_h * grid_w;
  const float inv = DETLAB_DIV(1.0f, (float)(count > 1 ? count : 1));
  int lo[2] = {H, W}, hi[2] = {-1, -1};
  for (int j = 0; j < OH + OW; j++) {
    int* list = geom + detlab_roialign_list_at(K, OH, OW, cap, r, j);
    const int axis = j < OH ? 0 : 1;
    if (axis == 0) {
      detlab_roialign_axis(list, cap, j, grid_h, start_h, bin_h, H);
    } else {
      detlab_roialign_axis(list, cap, j - OH, grid_w, start_w, bin_w, W);
    }
    for (int a = 0; a < list[0]; a++) {
      const int i = list[1 + a];
      lo[axis] = i < lo[axis] ? i : lo[axis];
      hi[axis] = i > hi[axis] ? i : hi[axis];
    }
  }
  int* meta = geom + 6 * r;
  meta[0] = (int)roi[0];
  meta[1] = lo[0];
  meta[2] = hi[0];
  meta[3] = lo[1];
  meta[4] = hi[1];
  meta[5] = (int)detlab_f2u(inv);
}

// detlab_roialign_forward_at is output i (r, c, ph, pw) of roi_align:
// sum over the bin's rows and columns of ((wy*wx)*inv) * x, in
// lib/roialign's tap order. A roi whose batch index is outside [0, N)
// (never one lib/cuda passes) gives 0.
template <class I>
DETLAB_HD float detlab_roialign_forward_at(const float* x, const int* geom, I i, int N, int C, int H, int W, int K,
                                           int OH, int OW, int cap) {
  const int pw = (int)(i % (I)OW);
  I t = i / (I)OW;
  const int ph = (int)(t % (I)OH);
  t /= (I)OH;
  const int c = (int)(t % (I)C);
  const detlab_i64 r = (detlab_i64)(t / (I)C);
  const int* meta = geom + 6 * r;
  const int batch = meta[0];
  if (batch < 0 || batch >= N) return 0.0f;
  const float inv = detlab_u2f((unsigned)meta[5]);
  const int* rows = geom + detlab_roialign_list_at(K, OH, OW, cap, r, ph);
  const int* cols = geom + detlab_roialign_list_at(K, OH, OW, cap, r, OH + pw);
  const float* plane = x + ((detlab_i64)batch * C + c) * H * W;
  float v = 0.0f;
  for (int a = 0; a < rows[0]; a++) {
    const float wy = detlab_u2f((unsigned)rows[1 + cap + a]);
    const float* row = plane + (detlab_i64)rows[1 + a] * W;
    for (int b = 0; b < cols[0]; b++) {
      const float w = DETLAB_MUL(DETLAB_MUL(wy, detlab_u2f((unsigned)cols[1 + cap + b])), inv);
      v = DETLAB_ADD(v, DETLAB_MUL(w, row[cols[1 + b]]));
    }
  }
  return v;
}

// detlab_roialign_weight sets *w to the weight of pixel i in list and
// reports whether the list holds it.
DETLAB_HD bool detlab_roialign_weight(const int* list, int cap, int i, float* w) {
  for (int a = 0; a < list[0]; a++) {
    if (list[1 + a] == i) {
      *w = detlab_u2f((unsigned)list[1 + cap + a]);
      return true;
    }
  }
  return false;
}

// DETLAB_ROIALIGN_CHANNELS is how many channels one backward thread
// serves: they share the search for the (roi, ph, pw) that sample a pixel,
// which costs more than the additions.
#define DETLAB_ROIALIGN_CHANNELS 4

// detlab_roialign_backward_at adds into dx, at pixel (y, x) of channels
// c0 .. c0+DETLAB_ROIALIGN_CHANNELS-1 (those below C) of image n, where
// i = ((n*ceil(C/4) + c0/4)*H + y)*W + x, every dy[r, c, ph, pw] *
// ((wy*wx)*inv) of the rois of image n whose bin (ph, pw) samples the
// pixel, added in (r, ph, pw) order: the order in which lib/roialign's
// backward scatters into each element, so every sum is bit-identical.
template <class I>
DETLAB_HD void detlab_roialign_backward_at(const float* dy, const int* geom, float* dx, I i, int C, int H, int W,
                                           int K, int OH, int OW, int cap) {
  const int groups = (C + DETLAB_ROIALIGN_CHANNELS - 1) / DETLAB_ROIALIGN_CHANNELS;
  const int x = (int)(i % (I)W);
  I t = i / (I)W;
  const int y = (int)(t % (I)H);
  t /= (I)H;
  const int c0 = (int)(t % (I)groups) * DETLAB_ROIALIGN_CHANNELS;
  const int n = (int)(t / (I)groups);
  const int nc = C - c0 < DETLAB_ROIALIGN_CHANNELS ? C - c0 : DETLAB_ROIALIGN_CHANNELS;
  const detlab_i64 hw = (detlab_i64)H * W, ohw = (detlab_i64)OH * OW;
  float* dxp = dx + ((detlab_i64)n * C + c0) * hw + (detlab_i64)y * W + x;
  float acc[DETLAB_ROIALIGN_CHANNELS];
  for (int j = 0; j < nc; j++) acc[j] = dxp[j * hw];
  for (detlab_i64 r = 0; r < K; r++) {
    const int* meta = geom + 6 * r;
    if (meta[0] != n || y < meta[1] || y > meta[2] || x < meta[3] || x > meta[4]) continue;
    const float inv = detlab_u2f((unsigned)meta[5]);
    const float* dyr = dy + (r * C + c0) * ohw;
    for (int ph = 0; ph < OH; ph++) {
      float wy;
      if (!detlab_roialign_weight(geom + detlab_roialign_list_at(K, OH, OW, cap, r, ph), cap, y, &wy)) continue;
      for (int pw = 0; pw < OW; pw++) {
        float wx;
        if (!detlab_roialign_weight(geom + detlab_roialign_list_at(K, OH, OW, cap, r, OH + pw), cap, x, &wx)) continue;
        const float w = DETLAB_MUL(DETLAB_MUL(wy, wx), inv);
        for (int j = 0; j < nc; j++) acc[j] = DETLAB_ADD(acc[j], DETLAB_MUL(dyr[j * ohw + ph * OW + pw], w));
      }
    }
  }
  for (int j = 0; j < nc; j++) dxp[j * hw] = acc[j];
}

extern "C" __global__ void detlab_roialign_layout(const float* rois, int* geom, int K, int H, int W, int OH, int OW,
                                                  int sampling_ratio, float spatial_scale, int aligned, int cap) {
  DETLAB_GRID_STRIDE(r, K) {
    detlab_roialign_layout_roi(rois, geom, r, K, H, W, OH, OW, sampling_ratio, spatial_scale, aligned, cap);
  }
}

extern "C" __global__ void detlab_roialign_forward(const float* x, const int* geom, float* y, int N, int C, int H,
                                                   int W, int K, int OH, int OW, int cap) {
  DETLAB_FOR_EACH(i, (detlab_i64)K * C * OH * OW,
                  { y[i] = detlab_roialign_forward_at(x, geom, i, N, C, H, W, K, OH, OW, cap); })
}

extern "C" __global__ void detlab_roialign_backward(const float* dy, const int* geom, float* dx, int N, int C, int H,
                                                    int W, int K, int OH, int OW, int cap) {
  const int groups = (C + DETLAB_ROIALIGN_CHANNELS - 1) / DETLAB_ROIALIGN_CHANNELS;
  DETLAB_FOR_EACH(i, (detlab_i64)N * groups * H * W,
                  { detlab_roialign_backward_at(dy, geom, dx, i, C, H, W, K, OH, OW, cap); })
}
