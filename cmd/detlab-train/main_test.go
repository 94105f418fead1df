package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/detlab/detlab/lib/nn"
	"github.com/detlab/detlab/lib/train"
)

func TestParseOptionsDefaults(t *testing.T) {
	o, err := parseOptions(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	// The article's recipe.
	got := map[string]any{
		"data": o.Data, "train": o.TrainSplit, "test": o.TestSplit, "out": o.Out,
		"epochs": o.Epochs, "lr": o.LR, "momentum": o.Momentum, "wd": o.WeightDecay,
		"step": o.StepSize, "gamma": o.Gamma, "batch": o.Batch, "accum": o.Accum,
		"amp": o.AMP, "hflip": o.HFlip, "min": o.MinSize, "max": o.MaxSize,
		"anchors": o.AnchorSizes, "ratios": o.AspectRatios, "rep": o.RepSize, "roi": o.RoIBatch,
		"layers": o.trainableLayers(), "frozen": o.frozenBN(), "eval": o.Eval, "resume": o.Resume,
	}
	want := map[string]any{
		"data": defaultData, "train": "trainval", "test": "test", "out": "out/bccd",
		"epochs": 6, "lr": 0.005, "momentum": 0.9, "wd": 5e-4,
		"step": 3, "gamma": 0.1, "batch": 2, "accum": 1,
		"amp": false, "hflip": 0.5, "min": 320, "max": 427,
		"anchors": []float64{32, 64, 128, 256, 512}, "ratios": []float64{0.5, 1, 2}, "rep": 1024, "roi": 512,
		"layers": 5, "frozen": false, "eval": true, "resume": false,
	}
	for k, w := range want {
		if !reflect.DeepEqual(got[k], w) {
			t.Errorf("%s: got %v, want %v", k, got[k], w)
		}
	}
}

func TestParseOptions(t *testing.T) {
	tests := []struct {
		args  []string
		check func(o *options) bool
	}{
		{[]string{"-data", "shapes"}, func(o *options) bool { return o.shapes() && o.Out == "out/shapes" }},
		{[]string{"-data", "/x/VOC2007/", "-out", "r"}, func(o *options) bool { return o.datasetName() == "voc2007" && o.Out == "r" }},
		{[]string{"-epochs", "3", "-lr", "0.01", "-batch", "4", "-accum", "2"}, func(o *options) bool {
			return o.Epochs == 3 && o.LR == 0.01 && o.Batch == 4 && o.Accum == 2
		}},
		{[]string{"-amp", "-precision", "fp16"}, func(o *options) bool { return o.AMP && o.Precision == nn.Float16 }},
		{[]string{"-amp"}, func(o *options) bool { return o.Precision == nn.BFloat16 }},
		{[]string{"-anchor-sizes", "16, 32,64", "-aspect-ratios", "1"}, func(o *options) bool {
			return reflect.DeepEqual(o.AnchorSizes, []float64{16, 32, 64}) && reflect.DeepEqual(o.AspectRatios, []float64{1})
		}},
		{[]string{"-weights", "r18.pth"}, func(o *options) bool { return o.trainableLayers() == 3 && o.frozenBN() }},
		{[]string{"-weights", "r18.pth", "-trainable-layers", "5", "-frozen-bn", "false"}, func(o *options) bool {
			return o.trainableLayers() == 5 && !o.frozenBN()
		}},
		{[]string{"-frozen-bn", "true", "-trainable-layers", "0"}, func(o *options) bool { return o.frozenBN() && o.trainableLayers() == 0 }},
		{[]string{"-resume", "-ckpt-every", "0", "-max-iters", "10", "-limit", "20", "-eval-every-epoch"}, func(o *options) bool {
			return o.Resume && o.CkptEvery == 0 && o.MaxIters == 10 && o.Limit == 20 && o.EvalEveryEpoch
		}},
		{[]string{"-seed", "-7", "-workers", "4", "-eval=false"}, func(o *options) bool { return o.Seed == -7 && o.Workers == 4 && !o.Eval }},
	}
	for _, tc := range tests {
		o, err := parseOptions(tc.args, io.Discard)
		if err != nil {
			t.Errorf("%v: %v", tc.args, err)
			continue
		}
		if !tc.check(o) {
			t.Errorf("%v: parsed %+v", tc.args, *o)
		}
	}
}

func TestParseOptionsErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string // in the message
	}{
		{[]string{"-epochs", "0"}, "-epochs"},
		{[]string{"-lr", "-1"}, "-lr"},
		{[]string{"-lr", "NaN"}, "-lr"},
		{[]string{"-momentum", "1"}, "-momentum"},
		{[]string{"-batch", "0"}, "-batch"},
		{[]string{"-accum", "0"}, "-accum"},
		{[]string{"-hflip", "1.5"}, "-hflip"},
		{[]string{"-min-size", "500", "-max-size", "400"}, "-min-size"},
		{[]string{"-anchor-sizes", "32,x"}, "anchor-sizes"},
		{[]string{"-anchor-sizes", "0"}, "anchor-sizes"},
		{[]string{"-precision", "int8"}, "precision"},
		{[]string{"-frozen-bn", "maybe"}, "-frozen-bn"},
		{[]string{"-trainable-layers", "6"}, "-trainable-layers"},
		{[]string{"-ckpt-every", "-1"}, "-ckpt-every"},
		{[]string{"-workers", "0"}, "-workers"},
		{[]string{"-data", "shapes", "-shapes-size", "8"}, "-shapes-size"},
		{[]string{"-nosuchflag"}, "nosuchflag"},
		{[]string{"extra"}, "unexpected argument"},
	}
	for _, tc := range tests {
		_, err := parseOptions(tc.args, io.Discard)
		if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: got %v, want a usage error mentioning %q", tc.args, err, tc.want)
		}
	}
	if _, err := parseOptions([]string{"-h"}, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: got %v", err)
	}
	if code := run(context.Background(), []string{"-batch", "0"}, io.Discard, io.Discard); code != 2 {
		t.Errorf("bad flag: exit %d, want 2", code)
	}
}

// tiny is a Shapes run small enough for a unit test: 64-pixel images,
// a narrow box head and few proposals (the ResNet18 body is the real one).
func tiny(out string, extra ...string) []string {
	return append([]string{"-data", "shapes", "-shapes-n", "4", "-shapes-test-n", "2", "-shapes-size", "64",
		"-min-size", "64", "-max-size", "64", "-anchor-sizes", "16,32", "-rep-size", "32", "-roi-batch", "32",
		"-rpn-topn", "100", "-workers", "1", "-seed", "3", "-out", out}, extra...)
}

func runOK(t *testing.T, ctx context.Context, args []string, want int) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if code := run(ctx, args, &stdout, &stderr); code != want {
		t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, want, stdout.String(), stderr.String())
	}
	return stdout.String() + stderr.String()
}

func readHistory(t *testing.T, dir string) *train.History {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "history.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h, err := train.ReadHistoryJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestRunShapes trains two steps and evaluates: every output is written and
// readable.
func TestRunShapes(t *testing.T) {
	out := t.TempDir()
	log := runOK(t, context.Background(), tiny(out, "-epochs", "2", "-shapes-n", "2"), 0)
	for _, s := range []string{"epoch 2/2: 1 steps", "s/step", "Average Precision  (AP) @[ IoU=0.50      | area=   all | maxDets=100 ]", "rectangle"} {
		if !strings.Contains(log, s) {
			t.Errorf("output lacks %q:\n%s", s, log)
		}
	}
	for _, f := range []string{"checkpoint.safetensors", "model.safetensors", "history.csv", "config.json", "summary.txt",
		"losses.png", "lr.png", "metrics_pr50.png"} {
		if fi, err := os.Stat(filepath.Join(out, f)); err != nil || fi.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	ev, _ := filepath.Glob(filepath.Join(out, "tb", "events.out.tfevents.*"))
	if len(ev) != 1 {
		t.Errorf("tb holds %d event files, want 1", len(ev))
	}
	if h := readHistory(t, out); len(h.Records) != 2 || h.Records[1].Step != 1 || h.Records[1].Epoch != 1 {
		t.Errorf("history: %+v", h.Records)
	}
	csv, _ := os.ReadFile(filepath.Join(out, "history.csv"))
	if n := strings.Count(string(csv), "\n"); n != 3 {
		t.Errorf("history.csv has %d lines, want a header and 2 rows", n)
	}
	var m struct {
		AP, AP50 *float64
		Steps    int `json:"steps_trained"`
		Epochs   int `json:"epochs_trained"`
		PerClass []struct {
			Name string
			AP50 *float64
		} `json:"per_class"`
		Summary []string
		Timing  struct {
			Steps  int
			Epochs []struct{ Seconds float64 }
		}
	}
	b, err := os.ReadFile(filepath.Join(out, "metrics.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m.AP == nil || m.AP50 == nil || *m.AP < 0 || *m.AP50 > 1 || m.Steps != 2 || m.Epochs != 2 ||
		len(m.PerClass) != 4 || m.PerClass[0].Name != "rectangle" || len(m.Summary) != 12 ||
		m.Timing.Steps != 2 || len(m.Timing.Epochs) != 2 || m.Timing.Epochs[0].Seconds <= 0 {
		t.Errorf("metrics.json: %s", b)
	}
	// Running again into the same directory without -resume refuses.
	log = runOK(t, context.Background(), tiny(out, "-epochs", "2", "-shapes-n", "2"), 1)
	if !strings.Contains(log, "-resume") {
		t.Errorf("second run: %s", log)
	}
	// With -resume the run is complete: nothing to train, evaluation only.
	log = runOK(t, context.Background(), tiny(out, "-epochs", "2", "-shapes-n", "2", "-resume"), 0)
	if !strings.Contains(log, "nothing left to train") {
		t.Errorf("resumed complete run: %s", log)
	}
}

// TestRunInterruptResume cancels the run (as SIGINT does) after the first
// step: it checkpoints and exits 130; -resume finishes with the same losses
// as an uninterrupted run.
func TestRunInterruptResume(t *testing.T) {
	if testing.Short() {
		t.Skip("three small training runs")
	}
	full := t.TempDir()
	runOK(t, context.Background(), tiny(full, "-epochs", "2", "-eval=false"), 0)

	out := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	stepHook = func(step int) {
		if step == 1 {
			cancel()
		}
	}
	defer func() { stepHook = nil }()
	log := runOK(t, ctx, tiny(out, "-epochs", "2", "-eval=false"), 130)
	stepHook = nil
	if !strings.Contains(log, "interrupted at epoch 1 batch 1 (step 1)") {
		t.Errorf("interrupted run: %s", log)
	}
	if h := readHistory(t, out); len(h.Records) != 1 {
		t.Errorf("history after the interrupt has %d steps, want 1", len(h.Records))
	}
	runOK(t, context.Background(), tiny(out, "-epochs", "2", "-eval=false", "-resume"), 0)

	want, got := readHistory(t, full), readHistory(t, out)
	if len(got.Records) != len(want.Records) || len(want.Records) != 4 {
		t.Fatalf("resumed run has %d steps, uninterrupted %d (want 4)", len(got.Records), len(want.Records))
	}
	for i := range want.Records {
		if g, w := got.Records[i].Losses["loss"], want.Records[i].Losses["loss"]; g != w || got.Records[i].Step != i {
			t.Errorf("step %d: loss %v after resume, %v uninterrupted", i, g, w)
		}
	}
}

// TestRunMaxIters stops after one step, checkpoints, evaluates, and a
// -resume run continues from there.
func TestRunMaxIters(t *testing.T) {
	if testing.Short() {
		t.Skip("two small training runs")
	}
	out := t.TempDir()
	log := runOK(t, context.Background(), tiny(out, "-max-iters", "1", "-ckpt-every", "1"), 0)
	if !strings.Contains(log, "stopped after -max-iters 1 steps") || !strings.Contains(log, "Average Precision") {
		t.Errorf("max-iters run: %s", log)
	}
	log = runOK(t, context.Background(), tiny(out, "-epochs", "1", "-resume", "-eval=false"), 0)
	if !strings.Contains(log, "resumed from") || !strings.Contains(log, "epoch 1/1: 1 steps") {
		t.Errorf("resumed run: %s", log)
	}
	if _, err := os.Stat(filepath.Join(out, "timing.json")); err != nil {
		t.Error(err)
	}
}

func TestRunBadData(t *testing.T) {
	log := runOK(t, context.Background(), []string{"-data", filepath.Join(t.TempDir(), "nope"), "-out", t.TempDir()}, 1)
	if !strings.Contains(log, "nope") {
		t.Errorf("missing dataset: %s", log)
	}
}
