// kernels.h: the contract between detlab's CUDA kernels and the Go launcher
// in lib/cuda (see /work/notes/s2/gpu_contract.md, issue 8).
//
// Every kernel is extern "C" (unmangled names, as the Go side looks them up
// with cuModuleGetFunction), takes float32 data and int sizes, and walks its
// work with a grid-stride loop, so any grid is correct. Launch with 256
// threads per block and grid = min(ceil(n/256), 65535), where n is the work
// count named on each kernel, unless the comment says otherwise.
//
// Parameter kinds as the PTX sees them (and as lib/cuda's kernelParams
// table spells them): every pointer is .u64 ("p"), every int .u32 ("i"),
// every float .f32 ("f"). Pass Go int32 for int, float32 for float and a
// device address (uintptr) for a pointer.
//
// Index arithmetic inside the kernels is 64-bit wherever a product of sizes
// can exceed 2^31.
#ifndef DETLAB_KERNELS_H
#define DETLAB_KERNELS_H

#ifdef __CUDACC__
#define DETLAB_GLOBAL extern "C" __global__
#else
#define DETLAB_GLOBAL extern "C"
#endif

// --- convolution (conv.cu) ---

// detlab_im2col writes the patch matrix of one image: x (C,H,W) ->
// col (C*KH*KW, OH*OW) row-major, zero padding. n = C*KH*KW*OH*OW.
DETLAB_GLOBAL void detlab_im2col(const float* x, float* col, int C, int H, int W, int KH, int KW,
                                 int SH, int SW, int PH, int PW, int OH, int OW);

// detlab_col2im adds fold(col) into dx (C,H,W): one thread per dx element
// gathers its contributions in (kh, kw) order (no atomics). n = C*H*W.
DETLAB_GLOBAL void detlab_col2im(const float* col, float* dx, int C, int H, int W, int KH, int KW,
                                 int SH, int SW, int PH, int PW, int OH, int OW);

// detlab_bias_add: y[n,k,:] += bias[k] for y (N,K,HW). n = N*K*HW.
DETLAB_GLOBAL void detlab_bias_add(float* y, const float* bias, int N, int K, int HW);

// detlab_channel_sum_add: out[c] += sum over n, hw of x (N,C,HW),
// accumulated in float64 (the bias gradient). Grid: C blocks (any number
// works) x 256 threads (any block size up to 1024 works).
DETLAB_GLOBAL void detlab_channel_sum_add(const float* x, float* out, int N, int C, int HW);

// --- batch norm (norm.cu) ---

// detlab_channel_stats: per channel mean and BIASED variance of x
// (N,C,HW), two passes in float64. Grid: C blocks x 256 threads (as
// detlab_channel_sum_add).
DETLAB_GLOBAL void detlab_channel_stats(const float* x, int N, int C, int HW, double* mean, double* var);

// detlab_channel_affine: y = x*scale[c] + shift[c], then max(y, 0) when
// relu != 0 (a NaN stays NaN, as lib/nn's CPU kernel); y may alias x.
// n = N*C*HW.
DETLAB_GLOBAL void detlab_channel_affine(const float* x, float* y, int N, int C, int HW,
                                         const float* scale, const float* shift, int relu);

// detlab_bn_train_stats: BatchNorm2d's train-mode forward statistics
// for x (N,C,HW): per channel the two-pass float64 mean and biased
// variance (as detlab_channel_stats), then invstd = 1/sqrt(var+eps), the
// running statistics updated in place (momentum; run_var with the
// unbiased variance), stats (4*C floats: mean and invstd as float32
// hi/lo pairs, see ops.h) and affine (2*C floats: the scale
// gamma*invstd, then the shift beta - mean*scale). Grid: C blocks x 256
// threads (as detlab_channel_sum_add).
DETLAB_GLOBAL void detlab_bn_train_stats(const float* x, int N, int C, int HW, const float* gamma, const float* beta,
                                         float* run_mean, float* run_var, double momentum, double eps, float* stats,
                                         float* affine);

// detlab_bn_backward_sums: BatchNorm2d's train-mode backward sums per
// channel of g and g*(x-mean) in float64, g = dy, or with relu != 0 +0
// where y <= 0 or NaN (y may be NULL without relu); dgamma += sum(g*xhat),
// dbeta += sum(g) (NULL: skipped); coef (3*C doubles) = gamma*invstd
// (0 when gamma is NULL), mean(g), mean(g*xhat). Grid: C blocks x 256.
DETLAB_GLOBAL void detlab_bn_backward_sums(const float* x, const float* y, const float* dy, const float* stats,
                                           const float* gamma, int N, int C, int HW, int relu, float* dgamma,
                                           float* dbeta, double* coef);

// detlab_bn_backward_dx: dx += k*(g - mean(g) - xhat*mean(g*xhat)) with
// coef from detlab_bn_backward_sums, in float64 rounded to float32.
// n = N*C*HW.
DETLAB_GLOBAL void detlab_bn_backward_dx(const float* x, const float* y, const float* dy, const float* stats,
                                         const double* coef, float* dx, int N, int C, int HW, int relu);

// --- pooling (pool.cu) ---

// detlab_maxpool2d: x (planes,H,W) -> y (planes,OH,OW); padding acts as
// -inf; arg (may be NULL) gets the flat index within the plane of the FIRST
// maximum in row-major window order; a NaN wins its window.
// n = planes*OH*OW.
DETLAB_GLOBAL void detlab_maxpool2d(const float* x, float* y, int* arg, int planes, int H, int W,
                                    int KH, int KW, int SH, int SW, int PH, int PW, int OH, int OW);

// detlab_maxpool2d_backward: dx[p, arg[p,o]] += dy[p,o] (atomicAdd); an
// arg outside [0, H*W) is skipped.
// n = planes*OH*OW.
DETLAB_GLOBAL void detlab_maxpool2d_backward(const float* dy, float* dx, const int* arg, int planes,
                                             int H, int W, int OH, int OW);

// --- elementwise (elementwise.cu) ---

// detlab_round_bf16 / detlab_round_fp16: round to nearest even in bfloat16
// / IEEE binary16 and widen back to float, exactly as lib/nn's RoundBF16 /
// RoundFP16 (NaN stays NaN; fp16 overflow gives +-Inf). y may alias x.
DETLAB_GLOBAL void detlab_round_bf16(const float* x, float* y, int n);
DETLAB_GLOBAL void detlab_round_fp16(const float* x, float* y, int n);

// detlab_add: y = a + b, then max(y, 0) when relu != 0 (NaN stays NaN).
DETLAB_GLOBAL void detlab_add(const float* a, const float* b, float* y, int n, int relu);

// detlab_relu: y = max(x, 0) (NaN stays NaN).
DETLAB_GLOBAL void detlab_relu(const float* x, float* y, int n);

// detlab_relu_backward: dx += dy where y > 0.
DETLAB_GLOBAL void detlab_relu_backward(const float* y, const float* dy, float* dx, int n);

// --- optimizer and scaler (optim.cu) ---

// detlab_sgd_step: torch.optim.SGD's update of p by gradient g with
// momentum buffer buf (unused when momentum == 0; may then be NULL),
// exactly as lib/train's SGD: d = g + wd*p; buf = d (first_step) or
// momentum*buf + (1-dampening)*d; d = d + momentum*buf (nesterov) or buf;
// p -= lr*d.
DETLAB_GLOBAL void detlab_sgd_step(float* p, const float* g, float* buf, int n, float lr, float momentum,
                                   float dampening, float weight_decay, int nesterov, int first_step);

// detlab_nonfinite sets *flag = 1 if any of x[0:n] is Inf or NaN (it never
// clears it: zero the flag before the launch).
DETLAB_GLOBAL void detlab_nonfinite(const float* x, int n, int* flag);

// detlab_scale: x *= s.
DETLAB_GLOBAL void detlab_scale(float* x, int n, float s);

// --- non-maximum suppression (nms.cu) ---

// detlab_nms_mask: the suppression masks of NMS over n boxes (x1, y1, x2,
// y2 rows) already sorted by decreasing score: bit k of
// mask[i*words + w] (words = ceil(n/64)) is set when box j = 64*w + k
// comes after box i (j > i) and their IoU, computed exactly as lib/box.NMS
// does in float32, is >= cut (NaN never is). Every word is written (zero
// where no j > i). Grid: any number of blocks (tiles of blockDim.x rows by
// 64 columns, block-strided); any block size up to 1024 works; launched
// with 256 threads.
DETLAB_GLOBAL void detlab_nms_mask(const float* boxes, int n, float cut, unsigned long long* mask);

// --- 16-bit GEMM operands (half.cu) ---

// detlab_to_bf16 / detlab_to_fp16: y[i] = the 16-bit encoding (bfloat16 /
// IEEE binary16) of x[i] rounded as lib/nn's RoundBF16 / RoundFP16 (ties to
// even, NaN stays NaN, fp16 overflow gives +-Inf, fp16 subnormals kept):
// the A and B operands of cublasGemmEx. n = n.
DETLAB_GLOBAL void detlab_to_bf16(const float* x, unsigned short* y, int n);
DETLAB_GLOBAL void detlab_to_fp16(const float* x, unsigned short* y, int n);

// detlab_im2col_bf16 / detlab_im2col_fp16: the patch matrices of N images
// x (N,C,H,W), encoded as detlab_to_bf16 / detlab_to_fp16, into
// col (C*KH*KW, N*ldn) row-major: row (c*KH+kh)*KW+kw, column
// n*ldn + oh*OW + ow (image n's im2col columns at offset n*ldn of every
// row; columns OH*OW..ldn-1 of each image are zeros, so ldn can round the
// GEMM operands up to 16-byte alignment), zero padding. With a 1x1 kernel,
// stride 1, no padding and ldn = HW this is (N,C,HW) -> (C,N*HW).
// n = N*C*KH*KW*ldn.
DETLAB_GLOBAL void detlab_im2col_bf16(const float* x, unsigned short* col, int N, int C, int H, int W, int KH,
                                      int KW, int SH, int SW, int PH, int PW, int OH, int OW, int ldn);
DETLAB_GLOBAL void detlab_im2col_fp16(const float* x, unsigned short* col, int N, int C, int H, int W, int KH,
                                      int KW, int SH, int SW, int PH, int PW, int OH, int OW, int ldn);

// --- RoIAlign (roialign.cu) ---

// torchvision.ops.roi_align on x (N,C,H,W) over rois (K,5) rows [batch, x1,
// y1, x2, y2], pooled to (K,C,OH,OW), bit for bit as lib/roialign (float32,
// its stencil factoring and summation order). Three launches share a
// geometry buffer of 6*K + K*(OH+OW)*(1+2*cap) ints (layout in
// roialign.cu), where cap >= min(2*grid, size) for every roi and axis (grid
// the sampling ratio, or the adaptive ceil(roi_extent/out) when
// sampling_ratio <= 0). The rois must be validated (batch in [0, N),
// finite coordinates) and the adaptive grid at most 2^24.

// detlab_roialign_layout writes each roi's stencils into geom. n = K.
DETLAB_GLOBAL void detlab_roialign_layout(const float* rois, int* geom, int K, int H, int W, int OH, int OW,
                                          int sampling_ratio, float spatial_scale, int aligned, int cap);

// detlab_roialign_forward writes y (K,C,OH,OW). n = K*C*OH*OW.
DETLAB_GLOBAL void detlab_roialign_forward(const float* x, const int* geom, float* y, int N, int C, int H, int W,
                                           int K, int OH, int OW, int cap);

// detlab_roialign_backward ADDS the gradient for dy (K,C,OH,OW) into dx
// (N,C,H,W): one thread per pixel of 4 channels gathers its contributions
// in lib/roialign's order (roi, ph, pw), no atomics, deterministic.
// n = N*ceil(C/4)*H*W.
DETLAB_GLOBAL void detlab_roialign_backward(const float* dy, const int* geom, float* dx, int N, int C, int H, int W,
                                            int K, int OH, int OW, int cap);

// --- fused convolution epilogue (epilogue.cu) ---

// detlab_conv_epilogue: in place on a convolution's output y (N,K,HW),
// y = relu(y*scale[k] + shift[k] + residual), lib/nn's ConvEpilogue with
// applyConvEpilogue's arithmetic: the product and the shift rounded
// separately, then the residual, then the ReLU when relu != 0 (NaN passes,
// -0 becomes +0). scale NULL means 1 and shift NULL 0 (both still applied);
// residual (N,K,HW) NULL means none (not added). residual does not alias y.
// n = N*K*HW.
DETLAB_GLOBAL void detlab_conv_epilogue(float* y, const float* scale, const float* shift, const float* residual,
                                        int N, int K, int HW, int relu);

// --- backward epilogues (backward.cu) ---

// detlab_convbn_backward: lib/nn's fused ConvBN backward for the output y
// (N,K,HW) and its gradient dy, with pass = !relu || y > 0 (NaN fails):
// dres += dy where pass (skipped, not an added 0, so a -0 stays -0) and
// dc = (pass ? dy : +0) * scale[k] (one rounding). dc or dres may be NULL
// (not written). dc may alias dy; dres aliases neither. n = N*K*HW.
DETLAB_GLOBAL void detlab_convbn_backward(const float* dy, const float* y, const float* scale, float* dc,
                                          float* dres, int N, int K, int HW, int relu);

// detlab_bias_grad: Linear's bias gradient for dy (rows, cols):
// db[j] += (float)(sum over r of (double)dy[r,j]), summed in row order in
// float64 as lib/nn's host loop (one thread per column). n = cols.
DETLAB_GLOBAL void detlab_bias_grad(const float* dy, float* db, int rows, int cols);

#endif  // DETLAB_KERNELS_H
