// Package nn is detlab's small neural-network engine: layers with
// torchvision's parameter names and initialisation, and a define-by-run
// reverse-mode autograd over lib/tensor.Tensor.
//
// A forward pass runs on a Graph. NewGraph records every operation so that
// Backward can differentiate a scalar loss; NewInferenceGraph records
// nothing (PyTorch's no_grad):
//
//	g := nn.NewGraph()
//	y, err := conv.Forward(g, g.Input(x))   // conv is an *nn.Conv2d
//	loss := nn.Sum(g, y)
//	err = g.Backward(loss)                  // conv.Weight.Grad now holds d loss/d w
//
// Parameters (Param) accumulate gradients across Backward calls, as in
// PyTorch; clear them with ZeroGrads. Modules expose their parameters and
// buffers as a StateDict keyed by torchvision's names, whose tensors are the
// model's own: weight loaders copy into them.
//
// Other packages add differentiable operations with Graph.Op, giving the
// output value and a function that turns the output gradient into input
// gradients. The heavy kernels (GEMM, convolution, BatchNorm arithmetic,
// pooling) run behind the Backend interface (CPU by default) so faster
// implementations can replace them; an Arena recycles buffers between
// iterations.
//
// Fused layers: ConvBN runs a convolution, a BatchNorm that is a fixed
// affine map (eval mode, or frozen as in torchvision's detection backbones),
// an optional residual and ReLU as one GEMM with the scale folded into the
// weights and the rest applied in the product's store (FusedConvBackend;
// other backends fall back to separate passes). Graph.WithEagerRelease
// recycles each intermediate value as soon as no remaining backward step can
// read it, which lowers a training step's peak memory.
//
// Convolution paths on the CPU: im2col into the GEMM's panels by default;
// on inference graphs (NewInferenceGraph) float32 3x3 stride-1
// convolutions with channel counts that are multiples of 16 use Winograd
// F(4,3) or F(2,3), whichever a cost estimate (its GEMMs' rows plus the
// transformed weights they stream) says is faster for the layer's map and
// batch: F(4,3) on ResNet18's 56x56 and 28x28 at batch 1, F(2,3) on 14x14
// and 7x7 (AVX-512 processors; DETLAB_WINOGRAD=off|2|4 overrides); other
// float32 inference convolutions with at most 256 output pixels run as
// patch-row products (one row per output pixel times the weights packed
// once; DETLAB_PATCH_ROWS=off); bfloat16 (autocast) inference
// convolutions go to oneDNN's bfloat16 or AMX kernels where libdnnl loads,
// and under lib/compute's DETLAB_CONV=auto|onednn BatchNorm-folded and all
// bfloat16 convolutions may too. CPU.Name says which run.
//
// Cached weights: values derived from a parameter (Winograd-transformed or
// oneDNN-reordered weights, bfloat16 copies) are kept in the parameter's
// WeightCache and rebuilt when its Version moves. Library code that writes
// parameters (loaders, the optimizer, checkpoints, StateDict.MarkChanged)
// moves it; code that writes Param.Value itself calls Param.MarkChanged, and
// BatchNorm2d.MarkStatsChanged after writing running statistics.
// DETLAB_WEIGHT_CACHE=off rebuilds on every call.
//
// Mixed precision: Graph.WithAutocast(BFloat16) or (Float16) is torch's
// autocast region. Conv2d, Linear and roialign.Apply then multiply operands
// in the reduced precision (forward and backward) with float32
// accumulation; everything else, the parameters (master weights) and all
// gradients stay float32. BFloat16 runs natively where the backend can
// (PrecisionBackend: the CPU backend on AVX512_BF16), otherwise, and always
// for Float16 on the CPU, the operands are rounded and multiplied by the
// float32 kernels (AutocastKernels says which); see WithAutocast for the op
// list.
//
// Devices: a Backend may live on an accelerator (lib/cuda). NewArenaWith
// gives graphs buffers from its memory; the optional interfaces in
// device.go (ElementwiseBackend, RoundingBackend, BatchNormBackend,
// BatchNormTrainBackend, ConvBNBackend, BiasBackend, OptimizerBackend,
// ScalerBackend, Zeroer, ...) name the work such a backend can take over
// from the host loops. A backend whose operations return before the device
// has run them implements Syncer; host code calls Sync before touching
// tensor data such work may still use (sync.go).
//
// NaN policy: NaN inputs are not rejected by the layers; they propagate to
// the outputs (ReLU and max pooling pass NaN on, as torch does). Callers
// that need a clean input check it with tensor.HasNaN.
package nn
