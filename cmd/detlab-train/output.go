package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/detlab/detlab/lib/eval"
	"github.com/detlab/detlab/lib/weights"
	"github.com/detlab/detlab/plots"
)

// jsonFloat writes NaN and infinities as null, which JSON can hold.
type jsonFloat float64

func (f jsonFloat) MarshalJSON() ([]byte, error) {
	x := float64(f)
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return []byte("null"), nil
	}
	return json.Marshal(x)
}

// timing is the run's wall time, recorded in metrics.json.
type timing struct {
	Epochs       []epochTiming `json:"epochs"`
	Steps        int           `json:"steps"`
	Images       int           `json:"images"`
	TrainSeconds float64       `json:"train_seconds"`
	EvalSeconds  float64       `json:"eval_seconds,omitempty"`
	LoadStart    string        `json:"load_average_start"`
	LoadEnd      string        `json:"load_average_end"`
	CPU          string        `json:"cpu"`
}

// epochTiming is one epoch's share of this process's training.
type epochTiming struct {
	Epoch      int     `json:"epoch"`
	Steps      int     `json:"steps"`
	Images     int     `json:"images"`
	Seconds    float64 `json:"seconds"`
	SecPerStep float64 `json:"seconds_per_step"`
	MeanLoss   float64 `json:"mean_loss"`
	Complete   bool    `json:"complete"`
	LoadAvg    string  `json:"load_average"`
}

// classMetrics is one class's line of metrics.json.
type classMetrics struct {
	ID            int       `json:"id"`
	Name          string    `json:"name"`
	AP            jsonFloat `json:"AP"`
	AP50          jsonFloat `json:"AP50"`
	AP75          jsonFloat `json:"AP75"`
	VOCAP50       jsonFloat `json:"VOC_AP50"`
	AR100         jsonFloat `json:"AR100"`
	NumGT         int       `json:"num_gt"`
	NumDetections int       `json:"num_detections"`
}

// metrics is metrics.json.
type metrics struct {
	Dataset  string         `json:"dataset"`
	Split    string         `json:"split"`
	Images   int            `json:"images"`
	Epoch    int            `json:"epochs_trained"`
	Step     int            `json:"steps_trained"`
	AP       jsonFloat      `json:"AP"`
	AP50     jsonFloat      `json:"AP50"`
	AP75     jsonFloat      `json:"AP75"`
	APSmall  jsonFloat      `json:"AP_small"`
	APMedium jsonFloat      `json:"AP_medium"`
	APLarge  jsonFloat      `json:"AP_large"`
	AR1      jsonFloat      `json:"AR1"`
	AR10     jsonFloat      `json:"AR10"`
	AR100    jsonFloat      `json:"AR100"`
	VOCAP50  jsonFloat      `json:"VOC_AP50"`
	PerClass []classMetrics `json:"per_class"`
	Summary  []string       `json:"summary"`
	Timing   *timing        `json:"timing,omitempty"`
}

// evaluate runs the model over the test set, writes the metrics and the
// summary under the given names and prints them.
func (r *runner) evaluate(ctx context.Context, metricsName, summaryName string) (*eval.Result, error) {
	t0 := time.Now()
	r.printf("evaluating on %d test images...\n", r.testDS.Len())
	tty := isTTY(r.stderr)
	res, err := evaluate(ctx, r.model, r.testDS, r.classes, r.o.EvalBatch, func(done, total int) {
		el := time.Since(t0).Seconds()
		line := fmt.Sprintf("eval %d/%d images %.2f s/image ETA %s", done, total, el/float64(done),
			fmtSeconds(el/float64(done)*float64(total-done)))
		switch {
		case tty && done == total:
			fmt.Fprintf(r.stderr, "\r\x1b[K%s\n", line)
		case tty:
			fmt.Fprintf(r.stderr, "\r\x1b[K%s", line)
		case done%(10*r.o.EvalBatch) < r.o.EvalBatch || done == total:
			fmt.Fprintln(r.stderr, line)
		}
	})
	if err != nil {
		return nil, err
	}
	secs := time.Since(t0).Seconds()
	r.timing.EvalSeconds = secs
	summary := res.String()
	table := res.ClassTable()
	r.printf("%s\n%s\nevaluation: %s (%.2f s/image)\n", strings.TrimRight(summary, "\n"), strings.TrimRight(table, "\n"),
		fmtSeconds(secs), secs/float64(r.testDS.Len()))
	m := metrics{
		Dataset: r.o.datasetName(), Split: r.o.TestSplit, Images: r.testDS.Len(),
		Epoch: r.tr.Epoch, Step: r.tr.Step,
		AP: jsonFloat(res.AP), AP50: jsonFloat(res.AP50), AP75: jsonFloat(res.AP75),
		APSmall: jsonFloat(res.APSmall), APMedium: jsonFloat(res.APMedium), APLarge: jsonFloat(res.APLarge),
		AR1: jsonFloat(res.AR1), AR10: jsonFloat(res.AR10), AR100: jsonFloat(res.AR100),
		VOCAP50: jsonFloat(res.VOCAP50),
		Summary: strings.Split(strings.TrimRight(summary, "\n"), "\n"),
	}
	if r.o.shapes() {
		m.Split = "synthetic test"
	}
	for _, c := range res.PerClass {
		m.PerClass = append(m.PerClass, classMetrics{ID: c.ID, Name: c.Name,
			AP: jsonFloat(c.AP), AP50: jsonFloat(c.AP50), AP75: jsonFloat(c.AP75),
			VOCAP50: jsonFloat(c.VOCAP50), AR100: jsonFloat(c.AR100),
			NumGT: c.NumGT, NumDetections: c.NumDetections})
	}
	r.timing.LoadEnd = loadAvg()
	r.timing.CPU = cpuName()
	tm := r.timing
	m.Timing = &tm
	if err := writeJSON(r.path(metricsName), m); err != nil {
		return nil, err
	}
	if err := writeFileAtomic(r.path(summaryName), []byte(summary+"\n"+table)); err != nil {
		return nil, err
	}
	r.figure(strings.TrimSuffix(metricsName, ".json")+"_pr50.png", func() (*plots.Figure, error) { return plots.PR(res, 0.5) })
	r.printf("wrote %s and %s\n", r.path(metricsName), r.path(summaryName))
	return res, nil
}

// writeTiming writes the timing alone when evaluation is off.
func (r *runner) writeTiming() error {
	r.timing.LoadEnd = loadAvg()
	r.timing.CPU = cpuName()
	return writeJSON(r.path("timing.json"), r.timing)
}

// writeHistory writes history.csv, history.json and the TensorBoard event
// file (replacing the previous one, so TensorBoard shows each step once).
func (r *runner) writeHistory() error {
	h := r.tr.History
	var csv, js bytes.Buffer
	if err := h.WriteCSV(&csv); err != nil {
		return fmt.Errorf("detlab-train: history: %w", err)
	}
	if err := h.WriteJSON(&js); err != nil {
		return fmt.Errorf("detlab-train: history: %w", err)
	}
	if err := writeFileAtomic(r.path("history.csv"), csv.Bytes()); err != nil {
		return err
	}
	if err := writeFileAtomic(r.path("history.json"), js.Bytes()); err != nil {
		return err
	}
	if len(h.Records) == 0 {
		return nil
	}
	tb := r.path("tb")
	old, _ := filepath.Glob(filepath.Join(tb, "events.out.tfevents.*"))
	cur, err := h.WriteTensorBoard(tb)
	if err != nil {
		return fmt.Errorf("detlab-train: %w", err)
	}
	for _, f := range old {
		if filepath.Clean(f) != filepath.Clean(cur) {
			os.Remove(f)
		}
	}
	r.figure("losses.png", func() (*plots.Figure, error) { return plots.Losses(h) })
	r.figure("lr.png", func() (*plots.Figure, error) { return plots.LearningRate(h) })
	return nil
}

// figure saves a plot into the output directory; a figure that cannot be
// drawn is reported and does not stop the run.
func (r *runner) figure(name string, draw func() (*plots.Figure, error)) {
	fig, err := draw()
	if err == nil {
		err = fig.Save(r.path(name))
	}
	if err != nil {
		fmt.Fprintf(r.stderr, "detlab-train: figure %s: %v\n", name, err)
	}
}

// saveModel writes the model's weights under torchvision's keys.
func (r *runner) saveModel() error {
	sd := r.model.StateDict()
	f, err := weights.FromTensorsInOrder(sd.Keys, sd.Tensors, map[string]string{
		"format": "pt", "detlab.classes": strings.Join(r.classes, ","),
	})
	if err != nil {
		return fmt.Errorf("detlab-train: model weights: %w", err)
	}
	if err := weights.WriteSafetensorsFile(r.path("model.safetensors"), f); err != nil {
		return fmt.Errorf("detlab-train: %w", err)
	}
	return nil
}

// writeJSON writes v indented, atomically.
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("detlab-train: %s: %w", path, err)
	}
	return writeFileAtomic(path, append(b, '\n'))
}

// writeFileAtomic writes b to a temporary file beside path and renames it.
func writeFileAtomic(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("detlab-train: %w", err)
	}
	werr := f.Chmod(0o644)
	if werr == nil {
		_, werr = f.Write(b)
	}
	cerr := f.Close()
	if werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(f.Name(), path)
	}
	if werr != nil {
		os.Remove(f.Name())
		return fmt.Errorf("detlab-train: writing %s: %w", path, werr)
	}
	return nil
}

// runRecord is config.json: the settings that define a run.
type runRecord map[string]string

// record lists the flags' values.
func (o *options) record() runRecord {
	rec := runRecord{}
	if o.fs != nil {
		o.fs.VisitAll(func(f *flag.Flag) { rec[f.Name] = f.Value.String() })
	}
	return rec
}

// diff names the settings that differ from prev, ignoring the ones a
// resumed run may change freely.
func (rec runRecord) diff(prev runRecord) []string {
	free := map[string]bool{"resume": true, "max-iters": true, "epochs": true, "workers": true,
		"log-every": true, "ckpt-every": true, "eval": true, "eval-every-epoch": true, "eval-batch": true,
		"eval-limit": true, "out": true}
	var keys []string
	for k := range rec {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []string
	for _, k := range keys {
		if !free[k] && prev[k] != rec[k] {
			out = append(out, fmt.Sprintf("-%s is %q now, %q in the checkpointed run", k, rec[k], prev[k]))
		}
	}
	return out
}

func readConfig(path string) (runRecord, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var rec runRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("detlab-train: %s: %w", path, err)
	}
	return rec, nil
}
