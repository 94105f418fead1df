package train

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/detlab/detlab/lib/nn"
	"github.com/detlab/detlab/lib/tensor"
	"github.com/detlab/detlab/lib/weights"
)

// Checkpoint format: one safetensors file. Tensors "model/<key>" hold the
// model's state dict (parameters and buffers, torchvision's keys; the
// parameters only when the model has no StateDict method) and
// "optim/momentum/<parameter>" the SGD momentum buffers, shaped like their
// parameters. The metadata key "detlab.train" holds JSON: format version,
// epoch, batch, step, seed, scaler state, base learning rate and the
// history. The random state is the seed plus the position: the loader
// seeds sample i of epoch e from (seed, e, i) and the trainer reseeds the
// model's sampler from (seed, epoch, batch) before every forward pass.
//
// Saving writes a temporary file in the same directory, syncs it and
// renames it over the target: an interrupted save leaves the last good
// checkpoint in place.
const checkpointKey = "detlab.train"

// ErrCheckpoint reports a checkpoint that does not fit the trainer or is
// not a trainer checkpoint.
var ErrCheckpoint = errors.New("train: bad checkpoint")

type ckptMeta struct {
	Format  int      `json:"format"`
	Epoch   int      `json:"epoch"`
	Batch   int      `json:"batch"`
	Step    int      `json:"step"`
	Seed    int64    `json:"seed"`
	LR      float64  `json:"lr"`
	Scaler  Scaler   `json:"scaler"`
	History []Record `json:"history"`
}

// writeHook lets tests make the checkpoint writer fail midway.
var writeHook func(io.Writer) io.Writer

// markModelChanged records that the model's tensors were written (a
// checkpoint restored), so values derived from them (nn.WeightCache) are
// rebuilt.
func (t *Trainer) markModelChanged() {
	if s, ok := t.model.(interface{ StateDict() *nn.StateDict }); ok {
		s.StateDict().MarkChanged()
		return
	}
	for _, p := range t.model.Params() {
		p.MarkChanged()
	}
}

func (t *Trainer) modelTensors() ([]string, map[string]*tensor.Tensor) {
	if s, ok := t.model.(interface{ StateDict() *nn.StateDict }); ok {
		sd := s.StateDict()
		return sd.Keys, sd.Tensors
	}
	m := map[string]*tensor.Tensor{}
	var keys []string
	for _, p := range t.model.Params() {
		keys = append(keys, p.Name)
		m[p.Name] = p.Value
	}
	return keys, m
}

// Save writes a checkpoint of the model, optimizer, scaler, counters and
// history to path atomically.
func (t *Trainer) Save(path string) (err error) {
	// A device backend may still be running queued work that writes the
	// parameters, momentum buffers or BatchNorm's running statistics.
	if err := nn.Sync(t.Opt.Backend); err != nil {
		return fmt.Errorf("train: checkpoint: %w", err)
	}
	keys, mt := t.modelTensors()
	names := make([]string, 0, len(keys))
	all := map[string]*tensor.Tensor{}
	for _, k := range keys {
		names = append(names, "model/"+k)
		all["model/"+k] = mt[k]
	}
	for _, p := range t.model.Params() {
		if buf, ok := t.Opt.Buffers[p.Name]; ok {
			n := "optim/momentum/" + p.Name
			b, err := tensor.FromSlice(buf, p.Value.Shape()...)
			if err != nil {
				return fmt.Errorf("train: checkpoint %q: %w", p.Name, err)
			}
			names = append(names, n)
			all[n] = b
		}
	}
	meta := ckptMeta{Format: 1, Epoch: t.Epoch, Batch: t.Batch, Step: t.Step, Seed: t.cfg.Seed,
		LR: t.cfg.LR, Scaler: *t.Scaler, History: jsonSafe(t.History.Records)}
	js, err := json.Marshal(meta)
	if err != nil {
		return fmt.Errorf("train: checkpoint: %w", err)
	}
	f, err := weights.FromTensorsInOrder(names, all, map[string]string{checkpointKey: string(js)})
	if err != nil {
		return fmt.Errorf("train: checkpoint: %w", err)
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("train: checkpoint: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	var w io.Writer = tmp
	if writeHook != nil {
		w = writeHook(w)
	}
	if err = weights.WriteSafetensors(w, f); err != nil {
		return fmt.Errorf("train: checkpoint: %w", err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("train: checkpoint: %w", err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("train: checkpoint: %w", err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("train: checkpoint: %w", err)
	}
	return nil
}

func jsonSafe(rs []Record) []Record {
	out := make([]Record, len(rs))
	for i, r := range rs {
		if math.IsInf(r.GradNorm, 0) || math.IsNaN(r.GradNorm) {
			r.GradNorm = -1
		}
		out[i] = r
	}
	return out
}

// Load restores a checkpoint written by Save into t: model tensors,
// momentum buffers, scaler, counters, seed and history. Everything is
// checked before anything changes: on error t and its model are as before.
func (t *Trainer) Load(path string) error {
	f, err := weights.ReadSafetensorsFile(path)
	if err != nil {
		return fmt.Errorf("train: checkpoint: %w", err)
	}
	raw, ok := f.Metadata[checkpointKey]
	if !ok {
		return fmt.Errorf("%w: %s has no %q metadata", ErrCheckpoint, path, checkpointKey)
	}
	var meta ckptMeta
	if err := json.Unmarshal([]byte(raw), &meta); err != nil {
		return fmt.Errorf("%w: %s: metadata: %v", ErrCheckpoint, path, err)
	}
	if meta.Format != 1 {
		return fmt.Errorf("%w: %s: unknown format %d", ErrCheckpoint, path, meta.Format)
	}
	if meta.Scaler.Scale <= 0 || math.IsNaN(meta.Scaler.Scale) || meta.Epoch < 0 || meta.Batch < 0 || meta.Step < 0 {
		return fmt.Errorf("%w: %s: invalid counters or scale", ErrCheckpoint, path)
	}
	keys, mt := t.modelTensors()
	src := map[string]*tensor.Tensor{}
	var problems []string
	for _, k := range keys {
		e, ok := f.Entries["model/"+k]
		if !ok {
			problems = append(problems, "missing "+k)
			continue
		}
		if !tensor.SameShape(e.Shape, mt[k].Shape()) {
			problems = append(problems, fmt.Sprintf("%s has shape %v, model %v", k, e.Shape, mt[k].Shape()))
			continue
		}
		src[k] = e.Tensor()
	}
	bufs := map[string][]float32{}
	byName := map[string]*nn.Param{}
	for _, p := range t.model.Params() {
		byName[p.Name] = p
	}
	for _, n := range f.Names {
		switch {
		case strings.HasPrefix(n, "model/"):
			if _, ok := mt[strings.TrimPrefix(n, "model/")]; !ok {
				problems = append(problems, "unexpected "+strings.TrimPrefix(n, "model/"))
			}
		case strings.HasPrefix(n, "optim/momentum/"):
			name := strings.TrimPrefix(n, "optim/momentum/")
			p, ok := byName[name]
			e := f.Entries[n]
			if !ok || len(e.F32Data) != p.Value.Len() {
				problems = append(problems, "momentum buffer does not fit "+name)
				continue
			}
			bufs[name] = append([]float32(nil), e.F32Data...)
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s: %s", ErrCheckpoint, path, strings.Join(problems, "; "))
	}
	for k, s := range src {
		copy(mt[k].Data(), s.Data())
	}
	t.markModelChanged()
	t.Opt.Buffers = bufs
	sc := meta.Scaler
	if t.Scaler != nil {
		sc.Backend = t.Scaler.Backend
	}
	t.Scaler = &sc
	t.Epoch, t.Batch, t.Step = meta.Epoch, meta.Batch, meta.Step
	t.cfg.Seed = meta.Seed
	for i := range meta.History {
		if meta.History[i].GradNorm < 0 {
			meta.History[i].GradNorm = math.Inf(1)
		}
	}
	t.History = &History{Records: meta.History}
	return nil
}
