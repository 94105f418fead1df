package nn

import (
	"math/rand"
	"os"
	"strings"
	"testing"

	"github.com/detlab/detlab/lib/compute"
)

// TestConvOneDNNDefaultBF16 checks that with DETLAB_CONV unset a bfloat16
// convolution reaches oneDNN exactly when it belongs to an inference graph
// (forwardOnly) and oneDNN picks a bfloat16 or AMX kernel for it: Conv2dFused
// must pass forwardOnly on as compute.ConvShape.Inference.
func TestConvOneDNNDefaultBF16(t *testing.T) {
	if v := os.Getenv(compute.EnvConv); v != "" {
		t.Skipf("%s=%s set: this test is about the default", compute.EnvConv, v)
	}
	geo := ConvGeom{N: 1, C: 16, H: 10, W: 10, K: 32, KH: 3, KW: 3, SH: 1, SW: 1, PH: 1, PW: 1, OH: 10, OW: 10, Precision: BFloat16}
	s := compute.ConvShape{N: 1, C: 16, H: 10, W: 10, K: 32, KH: 3, KW: 3, SH: 1, SW: 1, PH: 1, PW: 1, OH: 10, OW: 10, BF16: true}
	impl, err := compute.ConvOneDNNImpl(s, compute.Epilogue{})
	if err != nil {
		t.Skipf("oneDNN's convolutions unavailable, install libdnnl2 (apt-get install libdnnl2): %v", err)
	}
	bf16Kernel := !strings.HasPrefix(impl, "ref") && !strings.Contains(impl, "gemm") && (strings.Contains(impl, "bf16") || strings.Contains(impl, "amx"))
	rng := rand.New(rand.NewSource(1))
	x := randTensor(rng, 0, 1, geo.C, geo.H, geo.W).Data()
	w := randTensor(rng, 0, geo.K, geo.C, 3, 3).Data()
	y := make([]float32, geo.K*geo.OH*geo.OW)
	for _, forwardOnly := range []bool{true, false} {
		g := geo
		g.forwardOnly = forwardOnly
		if got, want := convOneDNN(g, x, w, ConvEpilogue{}, y), forwardOnly && bf16Kernel; got != want {
			t.Errorf("forwardOnly %v (oneDNN picks %s): oneDNN ran %v, want %v", forwardOnly, impl, got, want)
		}
	}
}
