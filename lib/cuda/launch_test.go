package cuda

import (
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestGridFor(t *testing.T) {
	for _, tc := range []struct{ n, want int }{
		{0, 0}, {-3, 0}, {1, 1}, {256, 1}, {257, 2}, {65535 * 256, 65535}, {65535*256 + 1, 65535}, {1 << 40, 65535},
	} {
		if got := gridFor(tc.n); got != tc.want {
			t.Errorf("gridFor(%d) = %d, want %d", tc.n, got, tc.want)
		}
	}
	for _, tc := range []struct{ c, want int }{{0, 0}, {1, 1}, {512, 512}, {70000, 65535}} {
		if got := channelGrid(tc.c); got != tc.want {
			t.Errorf("channelGrid(%d) = %d, want %d", tc.c, got, tc.want)
		}
	}
}

func TestPackArgs(t *testing.T) {
	for _, tc := range []struct {
		name string
		sig  string
		args []karg
		want []uint64
		err  string
	}{
		{"pointers ints floats", "ppif", []karg{pArg(0xdead0000), pArg(0), iArg(7), fArg(1.5)},
			[]uint64{0xdead0000, 0, 7, uint64(math.Float32bits(1.5))}, ""},
		{"negative int is two's complement in 32 bits", "i", []karg{iArg(-1)}, []uint64{0xffffffff}, ""},
		{"doubles use all 64 bits", "dd", []karg{dArg(0.1), dArg(-1e-5)}, []uint64{math.Float64bits(0.1), math.Float64bits(-1e-5)}, ""},
		{"float for double", "d", []karg{fArg(0.1)}, nil, `argument 0: want kind 'd', got 'f'`},
		{"flags", "ii", []karg{bArg(true), bArg(false)}, []uint64{1, 0}, ""},
		{"largest int", "i", []karg{iArg(math.MaxInt32)}, []uint64{math.MaxInt32}, ""},
		{"too few", "ppi", []karg{pArg(1), pArg(2)}, nil, "takes 3 arguments (ppi), got 2"},
		{"too many", "p", []karg{pArg(1), iArg(2)}, nil, "takes 1 arguments (p), got 2"},
		{"int for pointer", "pp", []karg{pArg(1), iArg(2)}, nil, `argument 1: want kind 'p', got 'i'`},
		{"float for int", "i", []karg{fArg(2)}, nil, `argument 0: want kind 'i', got 'f'`},
		{"int overflow", "i", []karg{iArg(math.MaxInt32 + 1)}, nil, "does not fit a C int"},
		{"int underflow", "i", []karg{iArg(math.MinInt32 - 1)}, nil, "does not fit a C int"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := packArgs("k", tc.sig, tc.args)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("slot %d = %#x, want %#x", i, got[i], tc.want[i])
				}
			}
		})
	}
}

// TestLaunchersMatchKernelTable: every launch the Backend makes passes the
// arguments the kernel table (checked against the PTX by ptx_test.go)
// declares; the fake device runs each op once and packArgs would have
// failed on any mismatch. Here: every kernel the backend uses is in the
// table.
// TestLaunchersMatchKernelTable: every kernel name the backend's Go
// sources launch (each "detlab_..." literal outside ptx.go and the tests)
// is in kernelParams, every kernel of the table is launched by some
// source (no kernel is left without a launcher), and the embedded PTX has
// exactly the table's kernels.
func TestLaunchersMatchKernelTable(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	lit := regexp.MustCompile(`"(detlab_[a-z0-9_]+)"`)
	used := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") || f == "ptx.go" {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range lit.FindAllSubmatch(src, -1) {
			used[string(m[1])] = true
		}
	}
	if len(used) == 0 {
		t.Fatal("no kernel names found in the launchers' sources")
	}
	for name := range used {
		if _, ok := kernelParams[name]; !ok {
			t.Errorf("kernel %s used by the backend is not in kernelParams", name)
		}
	}
	for _, name := range kernelNames {
		if !used[name] {
			t.Errorf("kernel %s of the table is launched by no source of the backend", name)
		}
	}
	if err := checkPTX(kernelsPTX); err != nil {
		t.Errorf("embedded PTX: %v", err)
	}
}
