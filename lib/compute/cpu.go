package compute

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
)

// CPUInfo describes the processor as /proc/cpuinfo reports it, for
// benchmark printouts and kernel selection.
type CPUInfo struct {
	Model   string // "model name", e.g. "AMD EPYC"; "unknown" if unreadable
	Cores   int    // logical CPUs usable by this process (runtime.NumCPU)
	AVX2    bool
	FMA     bool
	AVX512F bool
	BF16    bool // avx512_bf16
	AMX     bool // amx_tile (with amx_bf16 for bf16 matrix products)
}

// String formats the CPU on one line: model, cores and the relevant flags.
func (c CPUInfo) String() string {
	var flags []string
	for _, f := range []struct {
		on   bool
		name string
	}{{c.AVX2, "avx2"}, {c.FMA, "fma"}, {c.AVX512F, "avx512f"}, {c.BF16, "avx512_bf16"}, {c.AMX, "amx"}} {
		if f.on {
			flags = append(flags, f.name)
		}
	}
	if len(flags) == 0 {
		flags = []string{"no avx2/avx512/amx"}
	}
	return fmt.Sprintf("%s, %d cores, %s", c.Model, c.Cores, strings.Join(flags, " "))
}

var cpuOnce = sync.OnceValue(func() CPUInfo {
	info := CPUInfo{Model: "unknown", Cores: runtime.NumCPU()}
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return info
	}
	defer f.Close()
	info = parseCPUInfo(f, info)
	return info
})

// parseCPUInfo reads the first processor's model name and flags.
func parseCPUInfo(f *os.File, info CPUInfo) CPUInfo {
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	gotModel, gotFlags := false, false
	for sc.Scan() && !(gotModel && gotFlags) {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		key, val = strings.TrimSpace(key), strings.TrimSpace(val)
		switch key {
		case "model name":
			if !gotModel {
				info.Model, gotModel = val, true
			}
		case "flags":
			if gotFlags {
				continue
			}
			gotFlags = true
			for _, fl := range strings.Fields(val) {
				switch fl {
				case "avx2":
					info.AVX2 = true
				case "fma":
					info.FMA = true
				case "avx512f":
					info.AVX512F = true
				case "avx512_bf16":
					info.BF16 = true
				case "amx_tile":
					info.AMX = true
				}
			}
		}
	}
	return info
}

// CPU returns the processor description, read once from /proc/cpuinfo.
func CPU() CPUInfo { return cpuOnce() }
