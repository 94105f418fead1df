package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/detlab/detlab/lib/compute"
	"github.com/detlab/detlab/lib/data"
	"github.com/detlab/detlab/lib/fasterrcnn"
	"github.com/detlab/detlab/lib/nn"
	"github.com/detlab/detlab/lib/train"
	"github.com/detlab/detlab/lib/weights"
)

// errInterrupted ends a run stopped by a signal after its checkpoint.
var errInterrupted = errors.New("detlab-train: interrupted")

// stepHook, when set (by tests), runs after every optimizer step with the
// step count.
var stepHook func(step int)

// run is the command: it returns the exit status (0, 1 on failure, 2 on a
// bad command line, 130 when interrupted).
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseOptions(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	r := &runner{o: o, stdout: stdout, stderr: stderr}
	err = r.run(ctx)
	switch {
	case errors.Is(err, errInterrupted):
		fmt.Fprintln(stderr, err)
		return 130
	case err != nil:
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}

// runner holds one run's state.
type runner struct {
	o              *options
	stdout, stderr io.Writer

	trainDS, testDS data.Dataset
	classes         []string
	model           *fasterrcnn.Model
	tr              *train.Trainer
	rep             *reporter
	ckpt            string
	timing          timing
}

func (r *runner) path(name string) string { return filepath.Join(r.o.Out, name) }

func (r *runner) printf(format string, a ...any) { fmt.Fprintf(r.stdout, format, a...) }

func (r *runner) run(ctx context.Context) error {
	o := r.o
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return fmt.Errorf("detlab-train: %w", err)
	}
	r.ckpt = r.path("checkpoint.safetensors")
	r.printf("detlab-train: %s | %s | GOMAXPROCS %d | load average %s\n",
		compute.CPU(), compute.Backend(), runtime.GOMAXPROCS(0), loadAvg())
	if err := r.openData(); err != nil {
		return err
	}
	if err := r.buildModel(); err != nil {
		return err
	}
	if err := r.buildTrainer(); err != nil {
		return err
	}
	if r.tr.Step == 0 { // a resumed run keeps the first run's config.json
		if err := writeJSON(r.path("config.json"), o.record()); err != nil {
			return err
		}
	}
	stopped, err := r.trainLoop(ctx)
	if err != nil {
		return err
	}
	if err := r.writeHistory(); err != nil {
		return err
	}
	if err := r.saveModel(); err != nil {
		return err
	}
	if stopped {
		r.printf("stopped after -max-iters %d steps at epoch %d batch %d (step %d); -resume continues\n",
			o.MaxIters, r.tr.Epoch+1, r.tr.Batch, r.tr.Step)
	}
	if !o.Eval {
		return r.writeTiming()
	}
	if _, err := r.evaluate(ctx, "metrics.json", "summary.txt"); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%w during evaluation (training is complete and checkpointed)", errInterrupted)
		}
		return err
	}
	return nil
}

// openData opens the training and test sets, applying -limit and
// -eval-limit.
func (r *runner) openData() error {
	o := r.o
	if o.shapes() {
		cfg := data.ShapesConfig{N: o.ShapesN, Width: o.ShapesSize, Height: o.ShapesSize, Seed: o.Seed}
		tr, err := data.Shapes(cfg)
		if err != nil {
			return fmt.Errorf("detlab-train: %w", err)
		}
		cfg.N, cfg.Seed = o.ShapesTestN, o.Seed+1_000_003
		te, err := data.Shapes(cfg)
		if err != nil {
			return fmt.Errorf("detlab-train: %w", err)
		}
		r.trainDS, r.testDS = tr, te
		r.printf("data: shapes %dx%d, %d training and %d test images\n", o.ShapesSize, o.ShapesSize, tr.Len(), te.Len())
	} else {
		root := resolveData(o.Data)
		tr, err := data.OpenVOC(root, o.TrainSplit)
		if err != nil {
			return fmt.Errorf("detlab-train: training set: %w", err)
		}
		te, err := data.OpenVOC(root, o.TestSplit)
		if err != nil {
			return fmt.Errorf("detlab-train: test set: %w", err)
		}
		for _, ds := range []*data.VOC{tr, te} {
			if !ds.Report().OK() {
				r.printf("%s\n", strings.TrimRight(ds.Report().String(), "\n"))
			}
		}
		if strings.Join(tr.Classes(), ",") != strings.Join(te.Classes(), ",") {
			return fmt.Errorf("detlab-train: the splits name different classes: %v and %v", tr.Classes(), te.Classes())
		}
		r.trainDS, r.testDS = tr, te
		r.printf("data: VOC %s: %s %d images, %s %d images, classes %v\n",
			tr.Root(), o.TrainSplit, tr.Len(), o.TestSplit, te.Len(), tr.Classes()[1:])
	}
	r.classes = r.trainDS.Classes()
	var err error
	if r.trainDS, err = limit(r.trainDS, o.Limit); err != nil {
		return err
	}
	if r.testDS, err = limit(r.testDS, o.EvalLimit); err != nil {
		return err
	}
	if o.Limit > 0 || o.EvalLimit > 0 {
		r.printf("data: limited to %d training and %d test images\n", r.trainDS.Len(), r.testDS.Len())
	}
	if r.trainDS.Len() == 0 || r.testDS.Len() == 0 {
		return errors.New("detlab-train: empty training or test set")
	}
	return nil
}

// limit returns the first n samples of ds (all when n is 0 or too large).
func limit(ds data.Dataset, n int) (data.Dataset, error) {
	if n <= 0 || n >= ds.Len() {
		return ds, nil
	}
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	s, err := data.NewSubset(ds, idx)
	if err != nil {
		return nil, fmt.Errorf("detlab-train: %w", err)
	}
	return s, nil
}

// resolveData finds the default BCCD path from anywhere inside the
// repository: relative paths that do not exist are tried against the
// module root too.
func resolveData(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	if _, err := os.Stat(p); err == nil {
		return p
	}
	dir, err := os.Getwd()
	if err != nil {
		return p
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.Contains(string(b), "module github.com/detlab/detlab\n") {
			q := filepath.Join(dir, p)
			if _, err := os.Stat(q); err == nil {
				return q
			}
			return p
		}
		up := filepath.Dir(dir)
		if up == dir {
			return p
		}
		dir = up
	}
}

// buildModel makes the Faster R-CNN from the flags and loads -weights.
func (r *runner) buildModel() error {
	o := r.o
	cfg := fasterrcnn.Defaults(len(r.classes))
	cfg.MinSize, cfg.MaxSize = o.MinSize, o.MaxSize
	cfg.Anchors.Sizes = append([]float64(nil), o.AnchorSizes...)
	cfg.Anchors.AspectRatios = append([]float64(nil), o.AspectRatios...)
	cfg.RepresentationSize = o.RepSize
	cfg.RoI.BatchSizePerImage = o.RoIBatch
	if o.RPNTopN > 0 {
		cfg.RPN.PreNMSTopNTrain, cfg.RPN.PostNMSTopNTrain = o.RPNTopN, o.RPNTopN
		cfg.RPN.PreNMSTopNTest, cfg.RPN.PostNMSTopNTest = o.RPNTopN, o.RPNTopN
	}
	cfg.TrainableBackboneLayers = o.trainableLayers()
	cfg.FrozenBN = o.frozenBN()
	cfg.Seed = o.Seed
	m, err := fasterrcnn.New(cfg)
	if err != nil {
		return fmt.Errorf("detlab-train: %w", err)
	}
	init := "random initialisation"
	if o.Weights != "" {
		f, err := weights.ReadFile(o.Weights)
		if err != nil {
			return fmt.Errorf("detlab-train: -weights: %w", err)
		}
		rep, err := m.LoadBackbone(f)
		if err != nil {
			return fmt.Errorf("detlab-train: -weights %s: %w", o.Weights, err)
		}
		init = fmt.Sprintf("backbone from %s (%d tensors)", o.Weights, len(rep.Loaded))
	}
	bn := "BatchNorm (batch statistics in training)"
	if cfg.FrozenBN {
		bn = "FrozenBatchNorm"
	}
	r.printf("model: Faster R-CNN, ResNet18 body, %d classes, %s, %d trainable stages, %s, resize %d/%d, anchors %v x %v\n",
		cfg.NumClasses, init, cfg.TrainableBackboneLayers, bn, cfg.MinSize, cfg.MaxSize, cfg.Anchors.Sizes, cfg.Anchors.AspectRatios)
	r.model = m
	return nil
}

// buildTrainer makes the trainer and, with -resume, loads the checkpoint.
func (r *runner) buildTrainer() error {
	o := r.o
	cfg := train.Config{
		LR: o.LR, Momentum: o.Momentum, WeightDecay: o.WeightDecay,
		Schedule:  train.StepLR(o.StepSize, o.Gamma),
		BatchSize: o.Batch, AccumSteps: o.Accum, Workers: o.Workers, Seed: o.Seed,
		AMP: o.AMP, Precision: o.Precision, ClipNorm: o.ClipNorm,
		CheckpointPath: r.ckpt,
	}
	r.rep = &reporter{
		term:   &train.Terminal{W: r.stderr, TTY: isTTY(r.stderr), Every: o.LogEvery},
		epochs: o.Epochs, maxIters: o.MaxIters, every: o.CkptEvery,
		save: func() error { return r.tr.Save(r.ckpt) },
	}
	cfg.Reporter = r.rep
	if o.HFlip > 0 {
		cfg.Augment = data.HFlip{P: o.HFlip}
	}
	if !o.AMP {
		cfg.Precision = nn.Float32
	}
	r.tr = train.New(train.Detector(r.model), cfg)
	_, err := os.Stat(r.ckpt)
	exists := err == nil
	switch {
	case exists && o.Resume:
		if err := r.tr.Load(r.ckpt); err != nil {
			return fmt.Errorf("detlab-train: -resume: %w", err)
		}
		r.printf("resumed from %s: epoch %d, batch %d, step %d\n", r.ckpt, r.tr.Epoch+1, r.tr.Batch, r.tr.Step)
		if prev, err := readConfig(r.path("config.json")); err == nil {
			for _, d := range o.record().diff(prev) {
				r.printf("note: %s\n", d)
			}
		}
	case exists:
		return fmt.Errorf("detlab-train: %s exists: pass -resume to continue that run, or choose another -out", r.ckpt)
	case o.Resume:
		r.printf("no checkpoint in %s: starting from the beginning\n", o.Out)
	}
	return nil
}

// trainLoop trains epoch by epoch. It returns true when -max-iters stopped
// it, errInterrupted (after checkpointing) when ctx was cancelled.
func (r *runner) trainLoop(ctx context.Context) (stopped bool, err error) {
	o := r.o
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	nb, err := numBatches(r.trainDS, o.Batch)
	if err != nil {
		return false, err
	}
	spe := (nb + o.Accum - 1) / o.Accum
	rep := r.rep
	rep.total = o.Epochs*spe - (r.tr.Epoch*spe + r.tr.Batch/o.Accum)
	rep.start, rep.startStep, rep.cancel = time.Now(), r.tr.Step, cancel
	r.printf("training: %d epochs x %d steps (%d images of %d per step), SGD lr %g momentum %g wd %g, StepLR(%d, %g), hflip %g, seed %d, %s, %d workers\n",
		o.Epochs, spe, o.Batch, o.Batch*o.Accum, o.LR, o.Momentum, o.WeightDecay, o.StepSize, o.Gamma, o.HFlip, o.Seed, precisionName(o), o.Workers)
	r.timing.LoadStart = loadAvg()
	trainStart := time.Now()
	for e := r.tr.Epoch + 1; e <= o.Epochs; e++ {
		step0, batch0, t0 := r.tr.Step, r.tr.Batch, time.Now()
		_, ferr := r.tr.Fit(runCtx, r.trainDS, e)
		secs := time.Since(t0).Seconds()
		if ferr == nil && rep.err != nil {
			ferr = rep.err
		}
		steps := r.tr.Step - step0
		batchEnd := r.tr.Batch
		if r.tr.Epoch >= e {
			batchEnd = nb
		}
		ep := epochTiming{Epoch: e, Steps: steps, Images: imagesIn(r.trainDS.Len(), o.Batch, batch0, batchEnd),
			Seconds: secs, Complete: r.tr.Epoch >= e, LoadAvg: loadAvg()}
		if steps > 0 {
			ep.SecPerStep = secs / float64(steps)
			ep.MeanLoss = meanLoss(r.tr.History, step0, r.tr.Step)
		}
		r.timing.Epochs = append(r.timing.Epochs, ep)
		r.timing.TrainSeconds = time.Since(trainStart).Seconds()
		r.timing.Steps += steps
		r.timing.Images += ep.Images
		if steps > 0 || ep.Complete {
			r.printf("epoch %d/%d: %d steps, %d images in %s (%.2f s/step, %.2f images/s), mean loss %.4f, load average %s\n",
				e, o.Epochs, steps, ep.Images, fmtSeconds(secs), ep.SecPerStep, float64(ep.Images)/max(secs, 1e-9), ep.MeanLoss, ep.LoadAvg)
		}
		if ferr != nil {
			if !errors.Is(ferr, context.Canceled) || rep.err != nil {
				return false, fmt.Errorf("detlab-train: %w", ferr)
			}
			if err := r.tr.Save(r.ckpt); err != nil {
				return false, fmt.Errorf("detlab-train: %w", err)
			}
			if ctx.Err() != nil { // a signal, not -max-iters
				if err := r.writeHistory(); err != nil {
					return false, err
				}
				r.printf("interrupted at epoch %d batch %d (step %d): checkpoint %s written; run again with -resume to continue\n",
					r.tr.Epoch+1, r.tr.Batch, r.tr.Step, r.ckpt)
				return false, errInterrupted
			}
			r.printTotals()
			return true, nil
		}
		if err := r.writeHistory(); err != nil {
			return false, err
		}
		if o.EvalEveryEpoch && o.Eval && e < o.Epochs {
			tag := fmt.Sprintf("epoch%02d", e)
			if _, err := r.evaluate(ctx, "metrics_"+tag+".json", "summary_"+tag+".txt"); err != nil {
				if ctx.Err() != nil {
					return false, fmt.Errorf("%w during evaluation after epoch %d (checkpointed; -resume continues)", errInterrupted, e)
				}
				return false, err
			}
			r.tr.Model().(interface{ Train() }).Train()
		}
	}
	r.printTotals()
	return false, nil
}

func (r *runner) printTotals() {
	t := r.timing
	if t.Steps == 0 {
		r.printf("training: nothing left to train (epoch %d of %d done)\n", r.tr.Epoch, r.o.Epochs)
		return
	}
	r.printf("training: %d steps, %d images in %s: %.2f s/step, %.3f steps/s, %.2f images/s\n",
		t.Steps, t.Images, fmtSeconds(t.TrainSeconds), t.TrainSeconds/float64(t.Steps),
		float64(t.Steps)/t.TrainSeconds, float64(t.Images)/t.TrainSeconds)
}

// numBatches is the loader's batch count for ds.
func numBatches(ds data.Dataset, batch int) (int, error) {
	l, err := data.NewLoader(ds, data.LoaderConfig{BatchSize: batch})
	if err != nil {
		return 0, fmt.Errorf("detlab-train: %w", err)
	}
	return l.NumBatches(), nil
}

// imagesIn counts the images of batches [b0, b1) of a dataset of n images.
func imagesIn(n, batch, b0, b1 int) int {
	c := 0
	for b := b0; b < b1; b++ {
		c += min(batch, n-b*batch)
	}
	return c
}

func meanLoss(h *train.History, s0, s1 int) float64 {
	var sum float64
	var k int
	for _, rec := range h.Records {
		if rec.Step >= s0 && rec.Step < s1 && !rec.Skipped {
			sum += float64(rec.Losses["loss"])
			k++
		}
	}
	if k == 0 {
		return 0
	}
	return sum / float64(k)
}

func precisionName(o *options) string {
	if !o.AMP {
		return "float32"
	}
	return "AMP " + o.Precision.String() + " (" + nn.AutocastKernels(o.Precision) + ")"
}

// reporter turns the trainer's per-Fit progress into whole-run progress,
// checkpoints every N steps and enforces -max-iters.
type reporter struct {
	term      *train.Terminal
	total     int // steps this process will run without -max-iters
	epochs    int
	start     time.Time
	startStep int
	maxIters  int
	every     int
	save      func() error
	cancel    context.CancelFunc
	err       error
}

// Report implements train.Reporter.
func (p *reporter) Report(pr train.Progress) {
	done := pr.Step - p.startStep
	total := p.total
	if p.maxIters > 0 {
		total = min(total, p.maxIters)
	}
	pr.Epochs, pr.Done, pr.Total = p.epochs, done, total
	pr.Elapsed = time.Since(p.start).Seconds()
	pr.Rate = float64(done) / max(pr.Elapsed, 1e-9)
	pr.ETA = float64(total-done) / max(pr.Rate, 1e-12)
	p.term.Report(pr)
	if p.every > 0 && pr.Step%p.every == 0 && pr.Batch < pr.Batches {
		if err := p.save(); err != nil && p.err == nil {
			p.err = err
			p.cancel()
		}
	}
	if stepHook != nil {
		stepHook(pr.Step)
	}
	if p.maxIters > 0 && done >= p.maxIters {
		p.cancel()
	}
}

func isTTY(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// loadAvg is /proc/loadavg's three averages ("?" where unavailable).
func loadAvg() string {
	f, err := os.Open("/proc/loadavg")
	if err != nil {
		return "?"
	}
	defer f.Close()
	line, _ := bufio.NewReader(f).ReadString('\n')
	fs := strings.Fields(line)
	if len(fs) < 3 {
		return "?"
	}
	return strings.Join(fs[:3], " ")
}

func fmtSeconds(s float64) string {
	return time.Duration(s * float64(time.Second)).Round(100 * time.Millisecond).String()
}
