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
// gives graphs buffers from its memory; ElementwiseBackend and
// RoundingBackend name the element-wise work such a backend can take over.
//
// NaN policy: NaN inputs are not rejected by the layers; they propagate to
// the outputs (ReLU and max pooling pass NaN on, as torch does). Callers
// that need a clean input check it with tensor.HasNaN.
package nn
