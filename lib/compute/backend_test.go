package compute

import (
	"errors"
	"strings"
	"testing"
)

func TestSgemmKernels(t *testing.T) {
	if len(asmKernels) == 0 {
		t.Log("no assembly kernel on this CPU")
	}
	for _, kern := range append([]*microKernel{goKernel}, asmKernels...) {
		t.Run(kern.name, func(t *testing.T) {
			checkSgemmAgainstRef(t, func(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
				if m == 0 || n == 0 {
					return
				}
				sgemmKernel(kern, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
			})
		})
	}
}

func TestSgemmOpenBLAS(t *testing.T) {
	lib, err := openBLAS()
	if err != nil {
		if errors.Is(err, errNoOpenBLAS) {
			t.Skip("libopenblas0 not installed: apt-get install libopenblas0")
		}
		t.Fatal(err)
	}
	t.Logf("openblas %s, %d threads", lib.version, lib.threads)
	checkSgemmAgainstRef(t, func(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
		if m == 0 || n == 0 {
			return
		}
		lib.sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
	})
}

func TestChooseBackend(t *testing.T) {
	_, errLib := openBLAS()
	cases := []struct {
		env, want string
	}{
		{"go", "Go, " + bestKernel().name + " (DETLAB_BLAS=go)"},
		{"GO", "(DETLAB_BLAS=go)"},
		{"bogus", `(unknown DETLAB_BLAS="bogus"; want go, portable, openblas or onednn)`},
		{"portable", "Go, portable kernel 4x4 (DETLAB_BLAS=portable)"},
	}
	switch {
	case strings.HasPrefix(bestKernel().name, "avx512"):
		// auto prefers the Go AVX-512 kernel to OpenBLAS.
		cases = append(cases, struct{ env, want string }{"", "Go, avx512"}, struct{ env, want string }{"auto", "(auto: preferred to OpenBLAS with AVX-512)"})
		if errLib == nil {
			cases = append(cases, struct{ env, want string }{"openblas", "openblas "})
		}
	case errLib == nil:
		cases = append(cases, struct{ env, want string }{"openblas", "openblas "}, struct{ env, want string }{"", "openblas "})
	default:
		cases = append(cases, struct{ env, want string }{"openblas", "(DETLAB_BLAS=openblas but compute: libopenblas0 not installed"}, struct{ env, want string }{"", "Go, "})
	}
	for _, tc := range cases {
		if got := chooseBackend(tc.env).name; !strings.Contains(got, tc.want) {
			t.Errorf("chooseBackend(%q) = %q, want it to contain %q", tc.env, got, tc.want)
		}
	}
}

func TestCPU(t *testing.T) {
	c := CPU()
	if c.Cores < 1 || c.Model == "" {
		t.Fatalf("CPU() = %+v", c)
	}
	t.Log(c)
}
