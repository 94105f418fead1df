package session

import (
	"errors"
	"strings"
	"testing"

	"github.com/detlab/detlab/lib/cuda"
)

func TestGPUText(t *testing.T) {
	h200 := cuda.Info{Driver: "13.0", CUBLAS: "13.1.0", Devices: []cuda.DeviceInfo{{Ordinal: 0, Name: "NVIDIA H200", Capability: "9.0", TotalMemory: 150 << 30}}}
	noMem := func(string) (int64, int64, bool) { return 0, 0, false }
	someMem := func(d string) (int64, int64, bool) { return 1 << 30, 3 << 30, d == "cuda:0" }
	for _, c := range []struct {
		name string
		info cuda.Info
		err  error
		mem  func(string) (int64, int64, bool)
		want string
	}{
		{"no driver", cuda.Info{}, cuda.ErrNoDriver, noMem, "GPU: none (cuda: no NVIDIA driver (libcuda.so.1)); models run on the CPU."},
		{"no device", cuda.Info{Driver: "12.2"}, errors.Join(cuda.ErrNoDevice), noMem, "GPU: none (cuda: no CUDA device); models run on the CPU."},
		{"empty list", cuda.Info{Driver: "12.2"}, nil, noMem, "GPU: none (cuda: no CUDA device)"},
		{"h200 idle", h200, nil, noMem, `GPU: cuda:0 NVIDIA H200 (sm_90, 150.0 GiB), driver 13.0, cuBLAS 13.1.0; cfg.Device = "cuda:0" runs a model there.`},
		{"h200 in use", h200, nil, someMem, "cuda:0 NVIDIA H200 (sm_90, 150.0 GiB; 1.0 GiB in use, 3.0 GiB peak)"},
	} {
		if got := gpuText(c.info, c.err, c.mem); !strings.Contains(got, c.want) {
			t.Errorf("%s: %q, want it to contain %q", c.name, got, c.want)
		}
	}
}

func TestBannerNamesGPU(t *testing.T) {
	s := newSession(t)
	b := s.Banner()
	if !strings.Contains(b, "GPU: ") || !strings.HasSuffix(b, "%help lists the magics.") {
		t.Errorf("banner %q names no GPU (or why there is none)", b)
	}
	t.Log(b)
}
