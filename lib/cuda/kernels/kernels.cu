// kernels.cu: the one translation unit `go generate ./lib/cuda` compiles
// to lib/cuda/ptx/kernels.ptx, so the Go side loads a single module.
// Each source below also compiles on its own.
#include "backward.cu"
#include "conv.cu"
#include "elementwise.cu"
#include "epilogue.cu"
#include "half.cu"
#include "nms.cu"
#include "norm.cu"
#include "optim.cu"
#include "pool.cu"
#include "roialign.cu"
