// Command detlab-bench runs detlab's CPU workloads and the same workloads in
// PyTorch (Debian's python3-torch, 2 threads) side by side and prints one
// table: median time of each, their ratio, each side's peak resident memory
// and our share of the machine's peak fp32 FLOP rate.
//
//	go run ./cmd/detlab-bench            # every workload, both sides
//	go run ./cmd/detlab-bench -quick     # fewer runs
//	go run ./cmd/detlab-bench -only frcnn -torch=false
//	go run ./cmd/detlab-bench -worker frcnn-train-320-b2 -runs 3 -cpuprofile cpu.prof
//	go run ./cmd/detlab-bench -probe                     # what lib/cuda finds
//	go run ./cmd/detlab-bench -device cuda:0 -suite gpu -python /opt/torch/.venv/bin/python3
//
// With -device cuda[:N] the Faster R-CNN workloads run on that GPU
// (fasterrcnn.Config.Device) against torchvision on the same device
// (scripts/gpu/torch_gpu_bench.py) and the table shows peak GPU memory;
// -suite gpu runs the GPU check's set (640x480 training, batch 2 and 8,
// fp32 and AMP, and inference), -size shrinks its images for a smoke run
// on the CPU. scripts/gpu-check drives it on a GPU machine.
//
// Every workload runs in its own process on each side (ours: this binary
// with the hidden -worker flag; PyTorch's: torch_bench.py beside this file),
// after one warm-up run, so peak RSS is per workload. The header names the
// CPU, the kernels chosen (GEMM, convolution backend, autocast), the load
// average (the machine is shared) and the peak FLOP rate assumed: cores x
// FMA units x fp32 lanes x 2 x clock, clock from /proc/cpuinfo; -fma-units,
// -lanes and -ghz override the guesses.
//
// FLOPs are counted on our side by wrapping the nn Backend: convolutions
// and matrix products (forward and backward), 2 per multiply-add; the same
// count is used for PyTorch's share.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/detlab/detlab/lib/compute"
	"github.com/detlab/detlab/lib/cuda"
	"github.com/detlab/detlab/lib/nn"
)

// result is what a worker (either side) prints as one JSON line.
type result struct {
	Name      string    `json:"name"`
	TimesMS   []float64 `json:"times_ms"`
	MedianMS  float64   `json:"median_ms"`
	PeakRSSMB float64   `json:"peak_rss_mb"`
	GFLOP     float64   `json:"gflop"`
	CPUMS     float64   `json:"cpu_ms"` // user+system CPU time per run (median run's load-independent twin)
	Backend   string    `json:"backend"`
	PeakGPUMB float64   `json:"peak_gpu_mb,omitempty"` // peak device memory allocated (-device cuda)
	Error     string    `json:"error,omitempty"`
}

func main() {
	var (
		worker   = flag.String("worker", "", "internal: run one workload in this process and print JSON")
		runs     = flag.Int("runs", 0, "timed runs per workload (0: the workload's default)")
		warmup   = flag.Int("warmup", 1, "untimed warm-up runs")
		quick    = flag.Bool("quick", false, "fewer timed runs")
		only     = flag.String("only", "", "run only workloads whose name contains this")
		torch    = flag.Bool("torch", true, "run PyTorch's side too")
		python   = flag.String("python", "/usr/bin/python3", "Python with torch and torchvision (Debian python3-torch, python3-torchvision)")
		script   = flag.String("script", "", "torch_bench.py path (default: beside this source)")
		fmaUnits = flag.Int("fma-units", 0, "FMA units per core for the peak (0: guess)")
		lanes    = flag.Int("lanes", 0, "fp32 lanes per FMA for the peak (0: guess)")
		ghz      = flag.Float64("ghz", 0, "clock in GHz for the peak (0: /proc/cpuinfo)")
		cpuprof  = flag.String("cpuprofile", "", "with -worker: write a CPU profile of the timed runs (after warm-up) to this file")
		layers   = flag.Bool("layers", false, "with -worker: print the time of each convolution geometry (inference convolutions, ConvBN) per run to stderr")
		memprof  = flag.String("memprofile", "", "with -worker: write heap profiles after warm-up (FILE.base) and after the timed runs (FILE); compare with go tool pprof -sample_index=alloc_space -base FILE.base")
		device   = flag.String("device", "cpu", "where the Faster R-CNN workloads run: cpu, cuda or cuda:N (fasterrcnn.Config.Device); with a GPU the torch side is scripts/gpu/torch_gpu_bench.py on the same device")
		suite    = flag.String("suite", "", "gpu: run the GPU check's workloads (640x480 train b2/b8, fp32/AMP, inference) instead of the table above")
		size     = flag.String("size", "", "WxH replacing the image size of Faster R-CNN workloads on both sides (smoke tests)")
		probe    = flag.Bool("probe", false, "print the CUDA driver, cuBLAS and devices lib/cuda finds and exit (status 3 without a GPU)")
		mdOut    = flag.String("md", "", "with -device or -suite: also write the table as Markdown to this file")
		wtimeout = flag.Duration("worker-timeout", 0, "with -device or -suite: kill a side's process after this long (0: no limit)")
	)
	flag.Parse()
	if *probe {
		os.Exit(runProbe())
	}
	if kind, ord, err := cuda.ParseDevice(*device); err != nil {
		fmt.Fprintln(os.Stderr, "detlab-bench: -device:", err)
		os.Exit(2)
	} else if kind == "cuda" {
		benchDevice = fmt.Sprintf("cuda:%d", ord)
	}
	benchSize = *size
	if *worker != "" {
		if *memprof != "" {
			runtime.MemProfileRate = 64 << 10
		}
		os.Exit(runWorker(*worker, *runs, *quick, *warmup, *cpuprof, *memprof, *layers))
	}
	pk := withMeasuredPeak(peakFLOPS(*fmaUnits, *lanes, *ghz))
	fmt.Printf("detlab-bench  %s\n", time.Now().UTC().Format(time.RFC3339))
	fmt.Printf("cpu:      %s\n", compute.CPU())
	fmt.Printf("peak:     %.1f GFLOP/s fp32 = %s\n", pk.gflops, pk.formula)
	fmt.Printf("measured: %s\n", measuredRate(pk))
	fmt.Printf("gemm:     %s\n", compute.Backend())
	fmt.Printf("backend:  %s\n", nn.CurrentBackend().Name())
	fmt.Printf("autocast: %s\n", nn.AutocastKernels(nn.BFloat16))
	if b := measuredBF16Peak(); b > 0 {
		fmt.Printf("bf16:     VDPBF16PS loop on all cores %.1f GFLOP/s = %.2fx the fp32 peak (the bf16 rows' %%pk stays against fp32)\n", b, b/pk.gflops)
	}
	fmt.Printf("load:     %s (before)  GOMAXPROCS %d\n", loadAvg(), runtime.GOMAXPROCS(0))
	sp := *script
	if sp == "" {
		sp = defaultScript()
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "detlab-bench:", err)
		os.Exit(1)
	}
	if *suite != "" || benchDevice != "cpu" {
		o := suiteOptions{runs: *runs, warmup: *warmup, quick: *quick, torch: *torch, python: *python, script: *script, md: *mdOut, timeout: *wtimeout}
		if o.script == "" {
			o.script = gpuScript()
		}
		switch *suite {
		case "gpu":
			for _, n := range gpuSuite {
				if matchOnly(n, *only) {
					o.names = append(o.names, n)
				}
			}
		case "":
			for _, w := range workloads {
				if matchOnly(w.name, *only) && onDevice(w.name) {
					o.names = append(o.names, w.name)
				}
			}
		default:
			fmt.Fprintf(os.Stderr, "detlab-bench: -suite %q: the only suite is gpu\n", *suite)
			os.Exit(2)
		}
		os.Exit(runDeviceTable(self, o))
	}
	if *torch {
		fmt.Printf("torch:    %s %s (torch.set_num_threads(2))\n", *python, sp)
	}
	fmt.Println()
	fmt.Printf("%-26s %10s %10s %7s %9s %9s %8s %8s %10s %10s %7s\n", "workload", "ours ms", "torch ms", "ratio", "ours MiB", "torch MiB", "ours %pk", "torch %pk", "ours cpu", "torch cpu", "cpu rt")
	failed := false
	for _, w := range workloads {
		if !matchOnly(w.name, *only) {
			continue
		}
		args := []string{"-worker", w.name, "-warmup", strconv.Itoa(*warmup)}
		if *runs > 0 {
			args = append(args, "-runs", strconv.Itoa(*runs))
		}
		if *quick {
			args = append(args, "-quick")
		}
		ours := runSide(exec.Command(self, args...))
		var th result
		if *torch {
			targs := []string{sp, "--workload", w.name, "--warmup", strconv.Itoa(*warmup), "--runs", strconv.Itoa(pickRuns(w, *runs, *quick))}
			th = runSide(exec.Command(*python, targs...))
		} else {
			th.Error = "skipped"
		}
		fmt.Printf("%-26s %10s %10s %7s %9s %9s %8s %8s %10s %10s %7s\n", w.name, ms(ours), ms(th), ratio(ours, th),
			mib(ours), mib(th), share(ours.GFLOP, ours, pk), share(ours.GFLOP, th, pk), cpums(ours), cpums(th), cpuRatio(ours, th))
		for _, r := range []struct {
			side string
			r    result
		}{{"ours", ours}, {"torch", th}} {
			if r.r.Error != "" && r.r.Error != "skipped" {
				failed = true
				fmt.Printf("    %s: %s\n", r.side, r.r.Error)
			}
		}
	}
	fmt.Printf("\nload:     %s (after)\n", loadAvg())
	fmt.Printf("ratio = ours/torch median wall time (below 1: we are faster); %%pk = counted conv+GEMM FLOPs / median time / peak\n")
	fmt.Printf("cpu = user+system CPU ms per run (mean over the timed runs), cpu rt = ours/torch: less sensitive to other load on a shared machine\n")
	if failed {
		os.Exit(1)
	}
}

func pickRuns(w workload, runs int, quick bool) int {
	switch {
	case runs > 0:
		return runs
	case quick:
		return w.quick
	}
	return w.runs
}

// runSide runs one worker process and decodes its last JSON line.
func runSide(cmd *exec.Cmd) result {
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var r result
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if jerr := json.Unmarshal([]byte(lines[len(lines)-1]), &r); jerr != nil {
		msg := strings.TrimSpace(errb.String())
		if len(msg) > 300 {
			msg = "..." + msg[len(msg)-300:]
		}
		r.Error = fmt.Sprintf("%v: %s", err, msg)
	}
	return r
}

// runWorker times one workload in this process and prints a JSON result.
func runWorker(name string, runs int, quick bool, warmup int, cpuprof, memprof string, layers bool) int {
	w, err := findWorkload(name)
	if err != nil {
		fmt.Fprintf(os.Stderr, "detlab-bench: %v\n", err)
		return 2
	}
	runs = pickRuns(w, runs, quick)
	cnt := &counting{Backend: nn.CurrentBackend()}
	if layers {
		cnt.layers = &layerTimes{}
	}
	nn.SetBackend(cnt)
	r := result{Name: name, Backend: cnt.Backend.Name()}
	fail := func(err error) int {
		r.Error = err.Error()
		_ = json.NewEncoder(os.Stdout).Encode(r)
		return 1
	}
	step, err := w.setup()
	if err != nil {
		return fail(err)
	}
	for range warmup {
		if err := step(); err != nil {
			return fail(err)
		}
	}
	cnt.flops.Store(0)
	if cnt.layers != nil {
		cnt.layers.reset()
	}
	if memprof != "" {
		if err := writeHeap(memprof + ".base"); err != nil {
			return fail(err)
		}
		defer writeHeap(memprof)
	}
	if cpuprof != "" {
		f, err := os.Create(cpuprof)
		if err != nil {
			return fail(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return fail(err)
		}
		defer f.Close()
		defer pprof.StopCPUProfile()
	}
	cpu0, cpuMS := cpuTime(), 0.0
	for range runs {
		if w.collect {
			// The collection is not the workload's: keep it out of
			// the CPU time too.
			cpuMS += cpuTime() - cpu0
			runtime.GC()
			cpu0 = cpuTime()
		}
		t0 := time.Now()
		if err := step(); err != nil {
			return fail(err)
		}
		r.TimesMS = append(r.TimesMS, float64(time.Since(t0).Microseconds())/1000)
	}
	r.CPUMS = (cpuMS + cpuTime() - cpu0) / float64(runs)
	r.GFLOP = float64(cnt.flops.Load()) / float64(runs) / 1e9
	r.MedianMS = median(r.TimesMS)
	r.PeakRSSMB = peakRSSMB()
	if cnt.layers != nil {
		cnt.layers.write(os.Stderr, runs, r.MedianMS)
	}
	deviceResult(&r)
	_ = json.NewEncoder(os.Stdout).Encode(r)
	return 0
}

// matchOnly reports whether name contains one of the comma-separated
// substrings of only ("" matches everything).
func matchOnly(name, only string) bool {
	if only == "" {
		return true
	}
	for _, s := range strings.Split(only, ",") {
		if s != "" && strings.Contains(name, s) {
			return true
		}
	}
	return false
}

// writeHeap writes a heap profile (allocations since the start included).
func writeHeap(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	runtime.GC()
	return pprof.Lookup("allocs").WriteTo(f, 0)
}

// cpuTime is this process's user+system CPU time in milliseconds.
func cpuTime() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e6
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// peakRSSMB is VmHWM from /proc/self/status in MiB (-1 if unreadable).
func peakRSSMB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			if err == nil {
				return kb / 1024
			}
		}
	}
	return -1
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

type peak struct {
	gflops  float64
	formula string
}

// peakFLOPS estimates the fp32 peak: cores x FMA units x lanes x 2 x clock.
// Guesses: 2 FMA units per core (every AVX2/AVX-512 core we meet); 16
// lanes with AVX-512 except AMD Zen 4, which runs 512-bit FMAs as two
// 256-bit halves (8 effective; told apart from Zen 5 by the absence of
// avx512_vp2intersect), 8 with AVX2, 4 otherwise.
func peakFLOPS(units, lanes int, ghz float64) peak {
	c := compute.CPU()
	flags := cpuFlags()
	if units == 0 {
		units = 2
	}
	if lanes == 0 {
		switch {
		case c.AVX512F && strings.Contains(c.Model, "AMD") && !flags["avx512_vp2intersect"]:
			lanes = 8
		case c.AVX512F:
			lanes = 16
		case c.AVX2:
			lanes = 8
		default:
			lanes = 4
		}
	}
	if ghz == 0 {
		ghz = cpuGHz()
	}
	cores := runtime.GOMAXPROCS(0)
	g := float64(cores*units*lanes*2) * ghz
	return peak{g, fmt.Sprintf("%d cores x %d FMA units x %d lanes x 2 x %.3f GHz", cores, units, lanes, ghz)}
}

// measuredRate times a 384x384x384 Sgemm on all cores (best of five 50 ms
// windows) against the assumed peak: a rate near or above it means the
// clock in /proc/cpuinfo understates the real one (turbo) and the %pk
// columns overstate; a low one under other load means the machine is busy.
func measuredRate(pk peak) string {
	const n = 384
	a, b, c := make([]float32, n*n), make([]float32, n*n), make([]float32, n*n)
	for i := range a {
		a[i], b[i] = float32(i%7)*0.25, float32(i%5)*0.5
	}
	best := 0.0
	for range 5 {
		t0 := time.Now()
		reps := 0
		for time.Since(t0) < 50*time.Millisecond {
			compute.Sgemm(false, false, n, n, n, 1, a, n, b, n, 0, c, n)
			reps++
		}
		best = max(best, float64(2*n*n*n*reps)/time.Since(t0).Seconds()/1e9)
	}
	return fmt.Sprintf("Sgemm %dx%dx%d runs at %.1f GFLOP/s = %.0f%% of the assumed peak", n, n, n, best, 100*best/pk.gflops)
}

func cpuFlags() map[string]bool {
	m := map[string]bool{}
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return m
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "flags" {
			for _, fl := range strings.Fields(v) {
				m[fl] = true
			}
			break
		}
	}
	return m
}

// cpuGHz is the first "cpu MHz" of /proc/cpuinfo in GHz (2 if absent).
func cpuGHz() float64 {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return 2
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "cpu MHz" {
			if mhz, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil && mhz > 0 {
				return mhz / 1000
			}
		}
	}
	return 2
}

// defaultScript finds torch_bench.py: beside the executable's source (go
// run from the module root) or in the working directory.
func defaultScript() string {
	for _, p := range []string{"cmd/detlab-bench/torch_bench.py", "torch_bench.py"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if exe, err := os.Executable(); err == nil {
		return filepath.Join(filepath.Dir(exe), "torch_bench.py")
	}
	return "torch_bench.py"
}

func ms(r result) string {
	if r.Error != "" || r.MedianMS == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", r.MedianMS)
}

func cpums(r result) string {
	if r.Error != "" || r.CPUMS == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", r.CPUMS)
}

func cpuRatio(a, b result) string {
	if a.Error != "" || b.Error != "" || a.CPUMS == 0 || b.CPUMS == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", a.CPUMS/b.CPUMS)
}

func mib(r result) string {
	if r.Error != "" || r.PeakRSSMB <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f", r.PeakRSSMB)
}

func ratio(a, b result) string {
	if a.Error != "" || b.Error != "" || b.MedianMS == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", a.MedianMS/b.MedianMS)
}

func share(gflop float64, r result, pk peak) string {
	if r.Error != "" || r.MedianMS == 0 || gflop == 0 || pk.gflops == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100*gflop/(r.MedianMS/1000)/pk.gflops)
}
