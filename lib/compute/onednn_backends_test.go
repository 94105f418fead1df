package compute

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// loadedOneDNN returns the loaded oneDNN, skipping the test with the Debian
// package to install when the library is absent.
func loadedOneDNN(t testing.TB) *onednnLib {
	t.Helper()
	lib, err := oneDNN()
	if err != nil {
		if errors.Is(err, errNoOneDNN) {
			t.Skipf("oneDNN absent, install libdnnl2 (apt-get install libdnnl2): %v", err)
		}
		t.Fatal(err)
	}
	return lib
}

// TestSgemmOneDNN runs the Sgemm cases through the oneDNN backend as Sgemm
// would (small products in Go) and through dnnl_sgemm (the matmul's
// fallback) for every size; TestSgemmOneDNNMatmul runs them through the
// matmul primitive for every size.
func TestSgemmOneDNN(t *testing.T) {
	lib := loadedOneDNN(t)
	t.Logf("onednn %s (%s, %d threads)", lib.version, lib.runtime, lib.threads)
	for _, f := range []struct {
		name string
		gemm gemmFunc
	}{{"backend", lib.sgemm}, {"dnnl_sgemm", lib.raw}} {
		t.Run(f.name, func(t *testing.T) {
			checkSgemmAgainstRef(t, func(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
				if m == 0 || n == 0 {
					return
				}
				f.gemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
			})
		})
	}
}

// TestOneDNNThreadsFollowGOMAXPROCS checks in a child process that oneDNN's
// OpenMP threads follow GOMAXPROCS (OMP_NUM_THREADS reaches libgomp
// through os.Setenv before the library loads) and that a user's
// OMP_NUM_THREADS wins.
func TestOneDNNThreadsFollowGOMAXPROCS(t *testing.T) {
	if lib := loadedOneDNN(t); lib.runtime != "omp" {
		t.Skipf("oneDNN runs on %s, not OpenMP", lib.runtime)
	}
	cases := []struct{ env, want string }{
		{"GOMAXPROCS=1", ", 1 threads)"},
		{"OMP_NUM_THREADS=3", ", 3 threads)"},
	}
	for _, tc := range cases {
		var env []string
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "OMP_NUM_THREADS=") && !strings.HasPrefix(kv, "GOMAXPROCS=") {
				env = append(env, kv)
			}
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestBackendHonoursEnv$", "-test.v")
		cmd.Env = append(env, EnvBLAS+"=onednn", tc.env)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", tc.env, err, out)
		}
		if !strings.Contains(string(out), "detlab-blas: onednn ") || !strings.Contains(string(out), tc.want) {
			t.Errorf("%s: want the backend named with %q, got\n%s", tc.env, tc.want, out)
		}
	}
}

// BenchmarkSgemmOneDNN measures dnnl_sgemm (the matmul's fallback, bound by
// reflection) on the benchmark shapes; BenchmarkSgemmOneDNNMatmul measures
// what the backend runs.
func BenchmarkSgemmOneDNN(b *testing.B) { benchSgemm(b, loadedOneDNN(b).raw) }

// BenchmarkSgemmOpenBLAS measures OpenBLAS's sgemm_ (through purego.SyscallN) on the benchmark shapes.
func BenchmarkSgemmOpenBLAS(b *testing.B) {
	lib, err := openBLAS()
	if err != nil {
		b.Skipf("OpenBLAS absent, install libopenblas0: %v", err)
	}
	benchSgemm(b, lib.sgemm)
}
