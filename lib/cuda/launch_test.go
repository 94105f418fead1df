package cuda

import (
	"math"
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
func TestLaunchersMatchKernelTable(t *testing.T) {
	for _, name := range []string{"detlab_im2col", "detlab_col2im", "detlab_bias_add", "detlab_channel_sum_add",
		"detlab_channel_stats", "detlab_channel_affine", "detlab_maxpool2d", "detlab_maxpool2d_backward"} {
		if _, ok := kernelParams[name]; !ok {
			t.Errorf("kernel %s used by the backend is not in kernelParams", name)
		}
	}
	if err := checkPTX(kernelsPTX); err != nil {
		t.Errorf("embedded PTX: %v", err)
	}
}
