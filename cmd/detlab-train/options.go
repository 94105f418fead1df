package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/detlab/detlab/lib/nn"
)

// errUsage marks a command line that cannot run; the message says why.
var errUsage = errors.New("detlab-train: usage")

// defaultData is BCCD as the repository's sessions find it, relative to
// the repository root.
const defaultData = "../shared/data/bccd/BCCD"

// shapesData is the -data value selecting the built-in synthetic set.
const shapesData = "shapes"

// options is the parsed command line. Zero values never reach the run:
// parseOptions fills every default.
type options struct {
	Data       string // VOC root, or "shapes"
	TrainSplit string
	TestSplit  string
	Out        string

	Epochs      int
	LR          float64
	Momentum    float64
	WeightDecay float64
	StepSize    int
	Gamma       float64
	Batch       int
	Accum       int
	AMP         bool
	Precision   nn.Precision
	ClipNorm    float64
	Workers     int
	Seed        int64
	HFlip       float64

	MinSize, MaxSize int
	AnchorSizes      []float64
	AspectRatios     []float64
	RepSize          int
	RoIBatch         int
	RPNTopN          int

	Weights         string
	TrainableLayers int    // -1: 5 without -weights, 3 with (torchvision)
	FrozenBN        string // "auto", "true" or "false"

	Resume         bool
	CkptEvery      int
	MaxIters       int
	Limit          int
	EvalLimit      int
	Eval           bool
	EvalEveryEpoch bool
	EvalBatch      int
	LogEvery       int

	ShapesN, ShapesTestN, ShapesSize int

	fs *flag.FlagSet // the parsed flags, for config.json
}

// shapes reports whether the run uses the built-in synthetic set.
func (o *options) shapes() bool { return o.Data == shapesData }

// frozenBN resolves -frozen-bn: torchvision uses FrozenBatchNorm2d exactly
// when the backbone starts from trained weights.
func (o *options) frozenBN() bool {
	switch o.FrozenBN {
	case "true":
		return true
	case "false":
		return false
	}
	return o.Weights != ""
}

// trainableLayers resolves -trainable-layers as torchvision's
// _validate_trainable_layers: 5 without trained weights, 3 with them.
func (o *options) trainableLayers() int {
	if o.TrainableLayers >= 0 {
		return o.TrainableLayers
	}
	if o.Weights != "" {
		return 3
	}
	return 5
}

// floatList is a flag holding comma-separated numbers.
type floatList struct{ v *[]float64 }

func (f floatList) String() string {
	if f.v == nil {
		return ""
	}
	s := make([]string, len(*f.v))
	for i, x := range *f.v {
		s[i] = strconv.FormatFloat(x, 'g', -1, 64)
	}
	return strings.Join(s, ",")
}

func (f floatList) Set(s string) error {
	var out []float64
	for _, part := range strings.Split(s, ",") {
		x, err := strconv.ParseFloat(strings.TrimSpace(part), 64)
		if err != nil {
			return fmt.Errorf("%q is not a number", part)
		}
		if !(x > 0) || math.IsInf(x, 0) {
			return fmt.Errorf("%v must be a positive finite number", x)
		}
		out = append(out, x)
	}
	*f.v = out
	return nil
}

// precisionFlag holds -precision.
type precisionFlag struct{ p *nn.Precision }

func (f precisionFlag) String() string {
	if f.p == nil || *f.p == nn.BFloat16 {
		return "bf16"
	}
	return "fp16"
}

func (f precisionFlag) Set(s string) error {
	switch strings.ToLower(s) {
	case "bf16", "bfloat16":
		*f.p = nn.BFloat16
	case "fp16", "float16", "half":
		*f.p = nn.Float16
	default:
		return fmt.Errorf("%q: want bf16 or fp16", s)
	}
	return nil
}

// newFlagSet declares every flag on o with the article's recipe as
// defaults.
func newFlagSet(o *options, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("detlab-train", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: detlab-train [flags]\n\n%s\nflags:\n", usageHead)
		fs.PrintDefaults()
	}
	fs.StringVar(&o.Data, "data", defaultData, `VOC dataset root (the folder holding Annotations/), or "shapes" for the built-in synthetic set`)
	fs.StringVar(&o.TrainSplit, "train-split", "trainval", "VOC split to train on")
	fs.StringVar(&o.TestSplit, "test-split", "test", "VOC split to evaluate on")
	fs.StringVar(&o.Out, "out", "", `output directory (default "out/<dataset name>")`)

	fs.IntVar(&o.Epochs, "epochs", 6, "epochs to train (a total: a resumed run stops at the same epoch)")
	fs.Float64Var(&o.LR, "lr", 0.005, "SGD learning rate")
	fs.Float64Var(&o.Momentum, "momentum", 0.9, "SGD momentum")
	fs.Float64Var(&o.WeightDecay, "wd", 5e-4, "SGD weight decay")
	fs.IntVar(&o.StepSize, "step-size", 3, "StepLR step size in epochs")
	fs.Float64Var(&o.Gamma, "gamma", 0.1, "StepLR factor")
	fs.IntVar(&o.Batch, "batch", 2, "images per forward pass")
	fs.IntVar(&o.Accum, "accum", 1, "micro-batches per optimizer step (gradient accumulation)")
	fs.BoolVar(&o.AMP, "amp", false, "mixed precision: loss scaling and autocast (emulated rounding on the CPU)")
	o.Precision = nn.BFloat16
	fs.Var(precisionFlag{&o.Precision}, "precision", "autocast precision under -amp: bf16 or fp16")
	fs.Float64Var(&o.ClipNorm, "clip", 0, "clip the global gradient norm to this (0: no clipping)")
	fs.IntVar(&o.Workers, "workers", 2, "goroutines decoding and augmenting images")
	fs.Int64Var(&o.Seed, "seed", 0, "seed of the initialisation, shuffle, augmentation and sampling")
	fs.Float64Var(&o.HFlip, "hflip", 0.5, "horizontal flip probability (0: none)")

	fs.IntVar(&o.MinSize, "min-size", 320, "shorter image side after resizing")
	fs.IntVar(&o.MaxSize, "max-size", 427, "longest image side after resizing")
	o.AnchorSizes = []float64{32, 64, 128, 256, 512}
	fs.Var(floatList{&o.AnchorSizes}, "anchor-sizes", "anchor sizes in pixels of the resized image, comma-separated")
	o.AspectRatios = []float64{0.5, 1, 2}
	fs.Var(floatList{&o.AspectRatios}, "aspect-ratios", "anchor aspect ratios (height/width), comma-separated")
	fs.IntVar(&o.RepSize, "rep-size", 1024, "width of the box head's fc6 and fc7")
	fs.IntVar(&o.RoIBatch, "roi-batch", 512, "proposals sampled per image for the box head's losses")
	fs.IntVar(&o.RPNTopN, "rpn-topn", 0, "RPN pre- and post-NMS top-n, training and test (0: torchvision's 2000/2000, 1000/1000)")

	fs.StringVar(&o.Weights, "weights", "", "ImageNet resnet18 weights (.pth or .safetensors) for the backbone")
	fs.IntVar(&o.TrainableLayers, "trainable-layers", -1, "trainable backbone stages, 0-5 (-1: 5 without -weights, 3 with, as torchvision)")
	fs.StringVar(&o.FrozenBN, "frozen-bn", "auto", "backbone BatchNorm frozen: true, false or auto (frozen only with -weights, as torchvision)")

	fs.BoolVar(&o.Resume, "resume", false, "continue from <out>/checkpoint.safetensors when it exists")
	fs.IntVar(&o.CkptEvery, "ckpt-every", 50, "also checkpoint every N optimizer steps (0: only after each epoch)")
	fs.IntVar(&o.MaxIters, "max-iters", 0, "stop after N optimizer steps in this run, checkpoint and evaluate (0: no limit)")
	fs.IntVar(&o.Limit, "limit", 0, "train on the first N images of the split only (0: all)")
	fs.IntVar(&o.EvalLimit, "eval-limit", 0, "evaluate on the first N images of the test split only (0: all)")
	fs.BoolVar(&o.Eval, "eval", true, "evaluate on the test split at the end")
	fs.BoolVar(&o.EvalEveryEpoch, "eval-every-epoch", false, "also evaluate after every epoch")
	fs.IntVar(&o.EvalBatch, "eval-batch", 2, "images per inference batch in evaluation")
	fs.IntVar(&o.LogEvery, "log-every", 1, "print the progress line every N steps")

	fs.IntVar(&o.ShapesN, "shapes-n", 200, "training images of -data shapes")
	fs.IntVar(&o.ShapesTestN, "shapes-test-n", 50, "test images of -data shapes")
	fs.IntVar(&o.ShapesSize, "shapes-size", 256, "image side of -data shapes")
	return fs
}

// parseOptions parses and checks the command line.
func parseOptions(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := newFlagSet(o, stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("%w: unexpected argument %q (every setting is a flag)", errUsage, fs.Arg(0))
	}
	if err := o.check(); err != nil {
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	if o.Out == "" {
		o.Out = "out/" + o.datasetName()
		_ = fs.Set("out", o.Out)
	}
	o.fs = fs
	return o, nil
}

// datasetName is "shapes" or the VOC folder's name in lower case.
func (o *options) datasetName() string {
	if o.shapes() {
		return shapesData
	}
	p := strings.TrimRight(o.Data, "/")
	if i := strings.LastIndex(p, "/"); i >= 0 {
		p = p[i+1:]
	}
	if p == "" || p == "." || p == ".." {
		return "voc"
	}
	return strings.ToLower(p)
}

func (o *options) check() error {
	finite := func(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
	switch {
	case o.Data == "":
		return errors.New("-data is empty")
	case o.Epochs < 1:
		return fmt.Errorf("-epochs %d must be at least 1", o.Epochs)
	case !finite(o.LR) || o.LR <= 0:
		return fmt.Errorf("-lr %v must be a positive number", o.LR)
	case !finite(o.Momentum) || o.Momentum < 0 || o.Momentum >= 1:
		return fmt.Errorf("-momentum %v must be in [0, 1)", o.Momentum)
	case !finite(o.WeightDecay) || o.WeightDecay < 0:
		return fmt.Errorf("-wd %v must be >= 0", o.WeightDecay)
	case o.StepSize < 1:
		return fmt.Errorf("-step-size %d must be at least 1", o.StepSize)
	case !finite(o.Gamma) || o.Gamma <= 0:
		return fmt.Errorf("-gamma %v must be positive", o.Gamma)
	case o.Batch < 1:
		return fmt.Errorf("-batch %d must be at least 1", o.Batch)
	case o.Accum < 1:
		return fmt.Errorf("-accum %d must be at least 1", o.Accum)
	case !finite(o.ClipNorm) || o.ClipNorm < 0:
		return fmt.Errorf("-clip %v must be >= 0", o.ClipNorm)
	case o.Workers < 1:
		return fmt.Errorf("-workers %d must be at least 1", o.Workers)
	case !finite(o.HFlip) || o.HFlip < 0 || o.HFlip > 1:
		return fmt.Errorf("-hflip %v must be a probability in [0, 1]", o.HFlip)
	case o.MinSize < 1 || o.MaxSize < o.MinSize:
		return fmt.Errorf("-min-size %d and -max-size %d: need 1 <= min <= max", o.MinSize, o.MaxSize)
	case len(o.AnchorSizes) == 0 || len(o.AspectRatios) == 0:
		return errors.New("-anchor-sizes and -aspect-ratios need at least one value")
	case o.RepSize < 1:
		return fmt.Errorf("-rep-size %d must be at least 1", o.RepSize)
	case o.RoIBatch < 1:
		return fmt.Errorf("-roi-batch %d must be at least 1", o.RoIBatch)
	case o.RPNTopN < 0:
		return fmt.Errorf("-rpn-topn %d must be >= 0", o.RPNTopN)
	case o.TrainableLayers < -1 || o.TrainableLayers > 5:
		return fmt.Errorf("-trainable-layers %d must be in [0, 5] (or -1 for torchvision's choice)", o.TrainableLayers)
	case o.FrozenBN != "auto" && o.FrozenBN != "true" && o.FrozenBN != "false":
		return fmt.Errorf("-frozen-bn %q: want auto, true or false", o.FrozenBN)
	case o.CkptEvery < 0:
		return fmt.Errorf("-ckpt-every %d must be >= 0", o.CkptEvery)
	case o.MaxIters < 0:
		return fmt.Errorf("-max-iters %d must be >= 0", o.MaxIters)
	case o.Limit < 0 || o.EvalLimit < 0:
		return fmt.Errorf("-limit %d and -eval-limit %d must be >= 0", o.Limit, o.EvalLimit)
	case o.EvalBatch < 1:
		return fmt.Errorf("-eval-batch %d must be at least 1", o.EvalBatch)
	case o.LogEvery < 1:
		return fmt.Errorf("-log-every %d must be at least 1", o.LogEvery)
	case o.shapes() && (o.ShapesN < 1 || o.ShapesTestN < 1):
		return fmt.Errorf("-shapes-n %d and -shapes-test-n %d must be at least 1", o.ShapesN, o.ShapesTestN)
	case o.shapes() && o.ShapesSize < 32:
		return fmt.Errorf("-shapes-size %d must be at least 32", o.ShapesSize)
	}
	return nil
}
