package nn

import (
	"fmt"
	"math/rand"
	"testing"

	"github.com/detlab/detlab/lib/compute"
)

// TestConvBNFusedBF16MatchesLayers compares ConvBN fused under bfloat16
// autocast with the separate layers under the same autocast: the CPU
// backend (native bfloat16 panels and store where compute.HasBF16, else
// emulated) and a backend without Conv2dFused or native precision
// (rounded copies, float32 kernels, separate epilogue); forward and, with
// a frozen BatchNorm on a recording graph, the gradients of the input,
// weights, bias and residual.
//
// Tolerances: both sides multiply the same bfloat16-rounded operands and
// differ only in float32 rounding (summation order, and the BatchNorm's
// affine map computed as one scale and shift instead of normalise then
// scale): y within 1e-5 (1 + max|y|). In backward the convolution's output
// gradient is rounded to bfloat16 on both sides, so a last-ulp float32
// difference can flip the rounding of an element (2^-8 relative) in rare
// cases: gradients within relative L2 1e-4. Skipping that rounding on one
// side gives ~1e-3, and the test checks that the bfloat16 results do
// differ from float32 ones by more than that bound.
func TestConvBNFusedBF16MatchesLayers(t *testing.T) {
	for _, tc := range convBNCases {
		for _, be := range []Backend{CPU{}, plainBackend{CPU{}}} {
			name := fmt.Sprintf("%+v/%T", tc, be)
			t.Run(name, func(t *testing.T) {
				conv, bn, x, res, r := tc.setup(t, 11, BNFrozen)
				run := func(fused bool, p Precision) [][]float32 {
					for _, q := range conv.Params() {
						q.ZeroGrad()
					}
					g := NewGraph().WithBackend(be).WithArena(NewArena()).WithAutocast(p)
					xv := g.Leaf(x, true)
					var rv *Var
					if res != nil {
						rv = g.Leaf(res, true)
					}
					var out *Var
					var err error
					if fused {
						if !bn.Fusable(g) {
							t.Fatal("BatchNorm not fusable under autocast")
						}
						out, err = ConvBN(g, conv, bn, xv, rv, tc.relu)
					} else {
						out, err = convBNUnfused(g, conv, bn, xv, rv, tc.relu)
					}
					if err != nil {
						t.Fatal(err)
					}
					y := append([]float32(nil), out.Value.Data()...)
					if err := g.Backward(weightedSum(g, out, r)); err != nil {
						t.Fatal(err)
					}
					vals := [][]float32{y, append([]float32(nil), xv.Grad.Data()...), append([]float32(nil), conv.Weight.Grad.Data()...)}
					if rv != nil {
						vals = append(vals, append([]float32(nil), rv.Grad.Data()...))
					}
					if conv.Bias != nil {
						vals = append(vals, append([]float32(nil), conv.Bias.Grad.Data()...))
					}
					return vals
				}
				fused := run(true, BFloat16)
				layers := run(false, BFloat16)
				f32 := run(true, Float32)
				names := []string{"y", "dx", "dw", "dresidual or dbias", "dbias"}
				for i := range fused {
					got, want := fused[i], layers[i]
					if i == 0 {
						d, s := maxAbsDiff(got, want)
						if d > 1e-5*(1+s) {
							t.Errorf("y: fused bf16 differs from the bf16 layers by %g (scale %g)", d, s)
						}
						if tc.relu {
							for j, v := range got {
								if v < 0 {
									t.Fatalf("y[%d] = %v after ReLU", j, v)
								}
							}
						}
					} else if e := relL2(got, want); e > 1e-4 {
						t.Errorf("%s: fused bf16 differs from the bf16 layers by relative L2 %g", names[i], e)
					}
				}
				// The products did run in bfloat16 (a region ignored would
				// pass the comparison above trivially). The bias and
				// residual gradients do not depend on the rounding.
				for _, i := range []int{0, 2} {
					if e := relL2(fused[i], f32[i]); !(e > 3e-4) {
						t.Errorf("%s: bf16 result within relative L2 %g of float32: not rounded?", names[i], e)
					}
				}
			})
		}
	}
}

// TestConv2dBF16PanelsMatchEmulated: the CPU backend's bfloat16
// convolution (panels straight from the input, bias in the store) agrees
// with the float32 convolution of rounded operands plus a bias pass, to
// float32 summation order.
func TestConv2dBF16PanelsMatchEmulated(t *testing.T) {
	if !compute.HasBF16() {
		t.Skip("no native bfloat16 on this CPU: Conv2d's BFloat16 path is the emulated one")
	}
	for _, tc := range convBNCases {
		t.Run(fmt.Sprintf("%+v", tc), func(t *testing.T) {
			rng := rand.New(rand.NewSource(5))
			conv, err := NewConv2d("conv", tc.c, tc.k, tc.kernel, tc.stride, tc.padding, true, rng)
			if err != nil {
				t.Fatal(err)
			}
			x := randTensor(rng, 0, tc.n, tc.c, tc.h, tc.w)
			geo, err := conv.geom(x.Shape())
			if err != nil {
				t.Fatal(err)
			}
			n := geo.N * geo.K * geo.OH * geo.OW
			got, want := make([]float32, n), make([]float32, n)
			xd, wd, bias := x.Data(), conv.Weight.Value.Data(), conv.Bias.Value.Data()
			bgeo := geo
			bgeo.Precision = BFloat16
			CPU{}.Conv2d(bgeo, xd, wd, bias, got, NewArena())
			xr, wr := make([]float32, len(xd)), make([]float32, len(wd))
			BFloat16.RoundSlice(xr, xd)
			BFloat16.RoundSlice(wr, wd)
			CPU{}.Conv2d(geo, xr, wr, bias, want, NewArena())
			d, s := maxAbsDiff(got, want)
			// k float32 additions of exact products, relative 2^-24 each.
			if tol := float64(geo.C*geo.KH*geo.KW+4) / (1 << 23) * (1 + s); d > tol {
				t.Errorf("bf16 conv differs from float32 on rounded operands by %g > %g", d, tol)
			}
		})
	}
}
