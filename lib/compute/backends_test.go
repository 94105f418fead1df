package compute

import (
	"errors"
	"os"
	"strings"
	"testing"
)

func TestChooseBackendOneDNN(t *testing.T) {
	lib, err := oneDNN()
	cases := []string{"onednn", "ONEDNN", " dnnl "}
	for _, env := range cases {
		got := chooseBackend(env).name
		switch {
		case err == nil:
			want := "onednn " + lib.version + " (" + oneDNNGemmPath() + "; runtime, "
			if !strings.HasPrefix(got, want) {
				t.Errorf("chooseBackend(%q) = %q, want the prefix %q", env, got, want)
			}
		case errors.Is(err, errNoOneDNN):
			want := "Go, " + bestKernel().name + " (DETLAB_BLAS=onednn but compute: oneDNN (libdnnl.so.3 or .2) not installed: apt-get install libdnnl2"
			if !strings.HasPrefix(got, want) {
				t.Errorf("chooseBackend(%q) = %q, want the prefix %q", env, got, want)
			}
		default:
			t.Fatalf("loading oneDNN: %v", err)
		}
	}
	if got, want := chooseBackend("bogus").name, "want go, portable, openblas or onednn)"; !strings.HasSuffix(got, want) {
		t.Errorf("chooseBackend(%q) = %q, want the suffix %q", "bogus", got, want)
	}
}

// TestBackendHonoursEnv fails when DETLAB_BLAS names a backend whose
// library loads here but Backend reports another, so that a run of the
// parity tests under DETLAB_BLAS (internal/backendmatrix) cannot pass on a
// silent fallback. Without DETLAB_BLAS it only logs the backend.
func TestBackendHonoursEnv(t *testing.T) {
	env := strings.ToLower(strings.TrimSpace(os.Getenv(EnvBLAS)))
	t.Logf("detlab-blas: %s", Backend())
	var want string
	switch env {
	case "", "auto":
		return
	case "go", "purego", "pure":
		want = "Go, " + bestKernel().name
	case "portable":
		want = "Go, " + goKernel.name
	case "openblas":
		if _, err := openBLAS(); errors.Is(err, errNoOpenBLAS) {
			t.Skipf("%s=openblas but OpenBLAS is absent, install libopenblas0: %v", EnvBLAS, err)
		}
		want = "openblas "
	case "onednn", "dnnl":
		if _, err := oneDNN(); errors.Is(err, errNoOneDNN) {
			t.Skipf("%s=onednn but oneDNN is absent, install libdnnl2: %v", EnvBLAS, err)
		}
		want = "onednn "
	default:
		t.Fatalf("%s=%q names no backend: %s", EnvBLAS, env, Backend())
	}
	if got := Backend(); !strings.HasPrefix(got, want) || strings.Contains(got, " but ") {
		t.Fatalf("%s=%s but Backend() = %q, want it to start with %q", EnvBLAS, env, got, want)
	}
}

// BenchmarkSgemmKernels measures the Go Sgemm with each micro-kernel this
// CPU runs (portable, AVX2, AVX-512), beside BenchmarkSgemmOneDNN and
// BenchmarkSgemmOpenBLAS.
func BenchmarkSgemmKernels(b *testing.B) {
	for _, kern := range append([]*microKernel{goKernel}, asmKernels...) {
		b.Run(strings.ReplaceAll(kern.name, " ", "_"), func(b *testing.B) {
			benchSgemm(b, func(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, bb []float32, ldb int, beta float32, c []float32, ldc int) {
				sgemmKernel(kern, transA, transB, m, n, k, alpha, a, lda, bb, ldb, beta, c, ldc)
			})
		})
	}
}
