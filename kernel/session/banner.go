package session

import (
	"fmt"
	"strings"
	"sync"

	"github.com/detlab/detlab/lib/compute"
	"github.com/detlab/detlab/lib/cuda"
	"github.com/detlab/detlab/lib/fasterrcnn"
	"github.com/detlab/detlab/lib/nn"
)

// probeGPU runs cuda.Probe once per process, on the first kernel_info:
// the driver and devices do not change while the kernel runs.
var probeGPU = sync.OnceValues(cuda.Probe)

// deviceBanner is the banner's compute part: the CPU kernels, the default
// nn backend when it is not the CPU's, and the GPUs with the memory the
// models hold on each.
func deviceBanner() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Compute: CPU, %s.", compute.Backend())
	if be := nn.CurrentBackend(); be != nil {
		if _, cpu := be.(nn.CPU); !cpu {
			fmt.Fprintf(&b, " Default backend: %s.", be.Name())
		}
	}
	info, err := probeGPU()
	b.WriteString(" " + gpuText(info, err, fasterrcnn.DeviceMemory))
	return b.String()
}

// gpuText describes the GPUs Probe found (or why there are none); mem
// reports the memory models hold on a device ("cuda:N").
func gpuText(info cuda.Info, err error, mem func(device string) (inUse, peak int64, ok bool)) string {
	if err == nil && len(info.Devices) == 0 {
		err = cuda.ErrNoDevice
	}
	if err != nil {
		return fmt.Sprintf("GPU: none (%v); models run on the CPU.", err)
	}
	var devs []string
	for _, d := range info.Devices {
		s := fmt.Sprintf("cuda:%d %s (sm_%s, %s", d.Ordinal, d.Name, strings.ReplaceAll(d.Capability, ".", ""), gib(d.TotalMemory))
		if inUse, peak, ok := mem(fmt.Sprintf("cuda:%d", d.Ordinal)); ok {
			s += fmt.Sprintf("; %s in use, %s peak", gib(inUse), gib(peak))
		}
		devs = append(devs, s+")")
	}
	return fmt.Sprintf("GPU: %s, driver %s, cuBLAS %s; cfg.Device = \"cuda:%d\" runs a model there.",
		strings.Join(devs, ", "), info.Driver, info.CUBLAS, info.Devices[0].Ordinal)
}

func gib(n int64) string { return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30)) }
