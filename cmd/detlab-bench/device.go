package main

// device.go: -device and -suite gpu. The Faster R-CNN workloads run with
// fasterrcnn.Config.Device set (a GPU through lib/cuda), against
// torchvision on the same device (scripts/gpu/torch_gpu_bench.py), and the
// table adds each side's peak GPU memory. -suite gpu is the GPU check's set
// (640x480, batch 2 and 8, fp32 and AMP, and inference); -size shrinks its
// images so the whole path can be smoke-tested on a CPU.

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/detlab/detlab/lib/cuda"
	"github.com/detlab/detlab/lib/fasterrcnn"
	"github.com/detlab/detlab/lib/nn"
	"github.com/detlab/detlab/lib/tensor"
)

// benchDevice is the Config.Device of the Faster R-CNN workloads ("cpu",
// "cuda:0"); benchSize, when set, replaces the image size of -suite
// workloads (WxH).
var (
	benchDevice = "cpu"
	benchSize   = ""
)

// gpuSuite is what scripts/gpu-check benchmarks: issue 8's training step at
// 640x480, batch 2 and 8, fp32 and AMP, and inference.
var gpuSuite = []string{
	"frcnn-train-640x480-b2",
	"frcnn-train-640x480-b2-amp",
	"frcnn-train-640x480-b8",
	"frcnn-train-640x480-b8-amp",
	"frcnn-infer-640x480-b1",
}

// frcnnName is the workload naming both sides share:
// frcnn-(train|infer)-W[xH]-bN[-amp] (a bare W is square).
var frcnnName = regexp.MustCompile(`^frcnn-(train|infer)-(\d+)(?:x(\d+))?-b(\d+)(-amp)?$`)

// frcnnSpec is a parsed frcnnName.
type frcnnSpec struct {
	train    bool
	h, w, n  int
	autocast nn.Precision
}

func parseFRCNN(name, size string) (frcnnSpec, error) {
	m := frcnnName.FindStringSubmatch(name)
	if m == nil {
		return frcnnSpec{}, fmt.Errorf("unknown workload %q (want frcnn-train|infer-WxH-bN[-amp])", name)
	}
	s := frcnnSpec{train: m[1] == "train"}
	s.w, _ = strconv.Atoi(m[2])
	s.h = s.w
	if m[3] != "" {
		s.h, _ = strconv.Atoi(m[3])
	}
	s.n, _ = strconv.Atoi(m[4])
	if m[5] != "" {
		if !s.train {
			return frcnnSpec{}, fmt.Errorf("%s: inference runs in float32 only", name)
		}
		s.autocast = nn.Float16 // torch.autocast(cuda, float16)
	}
	if size != "" {
		ws, hs, ok := strings.Cut(strings.ToLower(size), "x")
		w, err1 := strconv.Atoi(ws)
		h, err2 := strconv.Atoi(hs)
		if !ok || err1 != nil || err2 != nil || w < 32 || h < 32 {
			return frcnnSpec{}, fmt.Errorf("-size %q: want WxH, each at least 32", size)
		}
		s.w, s.h = w, h
	}
	if s.n < 1 || s.w < 32 || s.h < 32 {
		return frcnnSpec{}, fmt.Errorf("%s: batch and image size out of range", name)
	}
	return s, nil
}

// deviceModel is the model the last Faster R-CNN setup built (for the
// backend name and memory in the worker's result).
var deviceModel *fasterrcnn.Model

// frcnnWorkload builds a workload from its name: the same model and
// targets as frcnnTrain and frcnnInfer, any batch, optionally under
// autocast, on benchDevice.
func frcnnWorkload(name string) (workload, error) {
	s, err := parseFRCNN(name, benchSize)
	if err != nil {
		return workload{}, err
	}
	runs, quick := 5, 2
	if s.n >= 8 {
		runs = 3
	}
	return workload{name: name, runs: runs, quick: quick, setup: func() (func() error, error) {
		m, err := frcnnModel(s.h, s.w)
		if err != nil {
			return nil, err
		}
		rng := rand.New(rand.NewSource(1))
		images := make([]*tensor.Tensor, s.n)
		for i := range images {
			images[i] = randomTensor(rng, 0, 1, 3, s.h, s.w)
		}
		ctx := context.Background()
		if !s.train {
			m.Eval()
			return func() error {
				_, err := m.PredictTensors(ctx, images)
				return err
			}, nil
		}
		m.Train()
		m.SetAutocast(s.autocast)
		targets := benchTargets(s.h, s.w, s.n)
		return func() error {
			m.ZeroGrad()
			l, err := m.Losses(ctx, images, targets)
			if err != nil {
				return err
			}
			return l.Backward()
		}, nil
	}}, nil
}

// findWorkload looks a worker's name up in the table, then as a Faster
// R-CNN name.
func findWorkload(name string) (workload, error) {
	for _, w := range workloads {
		if w.name == name && benchSize == "" {
			return w, nil
		}
	}
	return frcnnWorkload(name)
}

// onDevice reports whether a workload can run on a GPU (the Faster R-CNN
// ones; the others call CPU-only code or plain kernels).
func onDevice(name string) bool { return frcnnName.MatchString(name) }

// deviceResult fills a worker result's device fields after its runs.
func deviceResult(r *result) {
	if benchDevice == "cpu" || deviceModel == nil {
		return
	}
	r.Backend = deviceModel.Backend().Name()
	if _, peak, ok := deviceModel.DeviceMemory(); ok {
		r.PeakGPUMB = float64(peak) / (1 << 20)
	}
}

// runProbe prints what lib/cuda finds; the exit status is 0 with a
// device, 3 without.
func runProbe() int {
	info, err := cuda.Probe()
	fmt.Printf("cuda: %s\n", info)
	if info.DriverPath != "" {
		fmt.Printf("driver library: %s\n", info.DriverPath)
	}
	if info.CUBLASPath != "" {
		fmt.Printf("cuBLAS library: %s\n", info.CUBLASPath)
	}
	if err != nil {
		fmt.Printf("no GPU: %v\n", err)
		return 3
	}
	if len(info.Devices) == 0 {
		fmt.Println("no GPU: no CUDA device")
		return 3
	}
	return 0
}

// suiteOptions are the main flags the device table needs.
type suiteOptions struct {
	names          []string
	runs, warmup   int
	quick, torch   bool
	python, script string
	md             string
	timeout        time.Duration
}

// gpuScript finds scripts/gpu/torch_gpu_bench.py from the module root or
// the executable's directory.
func gpuScript() string {
	p := filepath.Join("scripts", "gpu", "torch_gpu_bench.py")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	if exe, err := os.Executable(); err == nil {
		return filepath.Join(filepath.Dir(exe), "torch_gpu_bench.py")
	}
	return p
}

// runDeviceTable runs each workload on both sides on benchDevice and
// prints (and with -md writes) the table with peak GPU memory.
func runDeviceTable(self string, o suiteOptions) int {
	fmt.Printf("device:   %s\n", benchDevice)
	if benchSize != "" {
		fmt.Printf("size:     %s (images resized for a smoke run)\n", benchSize)
	}
	if o.torch {
		fmt.Printf("torch:    %s %s --device %s\n", o.python, o.script, benchDevice)
	}
	fmt.Println()
	head := []string{"workload", "ours ms", "torch ms", "ratio", "ours GPU MiB", "torch GPU MiB", "ours RSS MiB", "torch RSS MiB"}
	fmt.Printf("%-28s %10s %10s %7s %12s %13s %12s %13s\n", toAny(head)...)
	var md strings.Builder
	fmt.Fprintf(&md, "| %s |\n| --- |%s\n", strings.Join(head, " | "), strings.Repeat(" ---: |", len(head)-1))
	failed := false
	var notes []string
	for _, name := range o.names {
		w, err := findWorkload(name)
		if err != nil {
			fmt.Printf("%-28s %s\n", name, err)
			failed = true
			continue
		}
		args := []string{"-worker", name, "-warmup", strconv.Itoa(o.warmup), "-device", benchDevice}
		if benchSize != "" {
			args = append(args, "-size", benchSize)
		}
		if o.runs > 0 {
			args = append(args, "-runs", strconv.Itoa(o.runs))
		}
		if o.quick {
			args = append(args, "-quick")
		}
		ours := runSideTimeout(o.timeout, self, args...)
		th := result{Error: "skipped"}
		if o.torch {
			targs := []string{o.script, "--workload", name, "--device", benchDevice, "--warmup", strconv.Itoa(o.warmup), "--runs", strconv.Itoa(pickRuns(w, o.runs, o.quick))}
			if benchSize != "" {
				targs = append(targs, "--size", benchSize)
			}
			th = runSideTimeout(o.timeout, o.python, targs...)
		}
		row := []string{name, ms(ours), ms(th), ratio(ours, th), gpuMiB(ours), gpuMiB(th), mib(ours), mib(th)}
		fmt.Printf("%-28s %10s %10s %7s %12s %13s %12s %13s\n", toAny(row)...)
		fmt.Fprintf(&md, "| %s |\n", strings.Join(row, " | "))
		for _, s := range []struct {
			side string
			r    result
		}{{"ours", ours}, {"torch", th}} {
			if s.r.Error != "" && s.r.Error != "skipped" {
				failed = true
				fmt.Printf("    %s: %s\n", s.side, s.r.Error)
				notes = append(notes, fmt.Sprintf("%s, %s: %s", name, s.side, s.r.Error))
			}
		}
		for _, s := range []struct {
			side string
			r    result
		}{{"ours", ours}, {"torch", th}} {
			if b := s.side + ": " + s.r.Backend; s.r.Error == "" && s.r.Backend != "" && !slices.Contains(notes, b) {
				notes = append(notes, b)
			}
		}
	}
	fmt.Println("\nratio = ours/torch median wall time (below 1: we are faster); GPU MiB = peak device memory allocated (ours: lib/cuda's accounting; torch: torch.cuda.max_memory_allocated)")
	if o.md != "" {
		md.WriteString("\nratio = ours/torch median wall time; GPU MiB = peak device memory (ours: lib/cuda's accounting, torch: torch.cuda.max_memory_allocated).\n\n")
		for _, n := range notes {
			fmt.Fprintf(&md, "- %s\n", strings.ReplaceAll(n, "\n", " "))
		}
		if err := os.WriteFile(o.md, []byte(md.String()), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "detlab-bench:", err)
			return 1
		}
	}
	if failed {
		return 1
	}
	return 0
}

// runSideTimeout is runSide with a time limit (0: none); a worker that
// runs past it is killed and reported.
func runSideTimeout(limit time.Duration, name string, args ...string) result {
	if limit <= 0 {
		return runSide(exec.Command(name, args...))
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	r := runSide(exec.CommandContext(ctx, name, args...))
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		r = result{Name: r.Name, Error: fmt.Sprintf("killed after the -worker-timeout of %s", limit)}
	}
	return r
}

func gpuMiB(r result) string {
	if r.Error != "" || r.PeakGPUMB <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f", r.PeakGPUMB)
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}
