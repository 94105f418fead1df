package data

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"sync"
	"sync/atomic"

	"github.com/detlab/detlab/lib/tensor"
	"github.com/detlab/detlab/lib/transform"
)

// LoaderConfig configures a Loader. The zero value loads batches of one
// sample in dataset order with two workers.
type LoaderConfig struct {
	// BatchSize is the samples per batch (default 1).
	BatchSize int
	// Workers is the number of goroutines reading and augmenting (default 2).
	Workers int
	// Prefetch is how many batches may be prepared ahead of the one being
	// consumed (default 2).
	Prefetch int
	// Shuffle draws a new order of the samples for each epoch.
	Shuffle bool
	// DropLast leaves out a last batch smaller than BatchSize.
	DropLast bool
	// Seed fixes the order and every augmentation: sample i of epoch e is
	// augmented with a *rand.Rand seeded from (Seed, e, i), whatever the
	// number of workers.
	Seed int64
	// Augment, if not nil, is applied to each sample.
	Augment Augmenter
	// Tensors makes the workers fill Sample.Pixels as well.
	Tensors bool
	// OnError: Fail (the zero value here is Skip) stops the epoch at the first
	// sample that cannot be read or augmented; Skip leaves it out of its
	// batch and records it in Report.
	OnError Policy
}

// Loader yields batches of samples from a dataset, reading and augmenting
// them in parallel.
type Loader struct {
	ds      Dataset
	cfg     LoaderConfig
	classes int
	report  *Report
}

// Batch is a group of samples in loading order.
type Batch struct {
	// Epoch and Index place the batch: Index counts batches within Epoch.
	Epoch, Index int
	// Samples are the loaded samples; Indices their dataset indices.
	Samples []Sample
	Indices []int
}

// NewLoader checks cfg, fills defaults and returns a loader over ds.
func NewLoader(ds Dataset, cfg LoaderConfig) (*Loader, error) {
	if ds == nil {
		return nil, errors.New("data: loader needs a dataset")
	}
	if cfg.BatchSize == 0 {
		cfg.BatchSize = 1
	}
	if cfg.Workers == 0 {
		cfg.Workers = 2
	}
	if cfg.Prefetch == 0 {
		cfg.Prefetch = 2
	}
	switch {
	case cfg.BatchSize < 0:
		return nil, fmt.Errorf("data: loader BatchSize %d is negative", cfg.BatchSize)
	case cfg.Workers < 0 || cfg.Workers > 256:
		return nil, fmt.Errorf("data: loader Workers %d outside 1..256", cfg.Workers)
	case cfg.Prefetch < 0:
		return nil, fmt.Errorf("data: loader Prefetch %d is negative", cfg.Prefetch)
	case cfg.OnError != Skip && cfg.OnError != Fail:
		return nil, fmt.Errorf("data: loader OnError policy %d unknown", int(cfg.OnError))
	case ds.Len() <= 0:
		return nil, errors.New("data: loader: the dataset is empty")
	case len(ds.Classes()) < 2 || ds.Classes()[0] != Background:
		return nil, fmt.Errorf("data: loader: Classes() must start with %q and name at least one class, got %v", Background, ds.Classes())
	}
	return &Loader{ds: ds, cfg: cfg, classes: len(ds.Classes()), report: newReport("loader", 0)}, nil
}

// Config returns the configuration with defaults filled in.
func (l *Loader) Config() LoaderConfig { return l.cfg }

// Report records the samples a Skip loader left out.
func (l *Loader) Report() *Report { return l.report }

// NumBatches is the number of batches per epoch.
func (l *Loader) NumBatches() int {
	n, b := l.ds.Len(), l.cfg.BatchSize
	if l.cfg.DropLast {
		return n / b
	}
	return (n + b - 1) / b
}

// Order returns the dataset indices in the order epoch visits them.
func (l *Loader) Order(epoch int) []int {
	n := l.ds.Len()
	if !l.cfg.Shuffle {
		idx := make([]int, n)
		for i := range idx {
			idx[i] = i
		}
		return idx
	}
	return rand.New(rand.NewSource(mixSeed(l.cfg.Seed, 0x0bde7, int64(epoch)))).Perm(n)
}

// SampleRand returns the random source the loader uses for dataset index i
// in epoch (exported so a caller can reproduce one sample's augmentation).
func (l *Loader) SampleRand(epoch, i int) *rand.Rand {
	return rand.New(rand.NewSource(mixSeed(l.cfg.Seed, 0xa06, int64(epoch), int64(i))))
}

// Load reads and augments dataset index i as epoch would.
func (l *Loader) Load(epoch, i int) (Sample, error) {
	s, err := l.ds.Sample(i)
	if err != nil {
		return Sample{}, fmt.Errorf("data: loader: sample %d: %w", i, err)
	}
	if err := s.Check(l.classes); err != nil {
		return Sample{}, fmt.Errorf("data: loader: sample %d: %w", i, err)
	}
	if l.cfg.Augment != nil {
		if s, err = l.cfg.Augment.Augment(s, l.SampleRand(epoch, i)); err != nil {
			return Sample{}, fmt.Errorf("data: loader: augment sample %d (%s): %w", i, s.ID, err)
		}
	}
	if l.cfg.Tensors && s.Pixels == nil {
		if s.Pixels, err = s.Tensor(); err != nil {
			return Sample{}, fmt.Errorf("data: loader: sample %d: %w", i, err)
		}
	}
	return s, nil
}

// Iterator walks one epoch. Call Close when done (or cancel the context
// given to Epoch); both stop the workers and wait for them. Next is meant
// for one goroutine at a time.
type Iterator struct {
	ctx     context.Context
	cancel  context.CancelFunc
	pending chan *slot
	wg      sync.WaitGroup
	err     error
	loader  *Loader
	epoch   int
	once    sync.Once
}

type slot struct {
	index   int
	indices []int
	samples []Sample
	errs    []error
	left    atomic.Int32
	done    chan struct{}
}

type job struct {
	s *slot
	k int
}

// Epoch starts loading epoch (which selects the shuffle order and the
// augmentations) from its first batch.
func (l *Loader) Epoch(ctx context.Context, epoch int) *Iterator {
	return l.EpochFrom(ctx, epoch, 0)
}

// EpochFrom starts loading epoch at batch start, giving the same batches
// an uninterrupted epoch gives from there (for resuming a checkpoint).
func (l *Loader) EpochFrom(ctx context.Context, epoch, start int) *Iterator {
	ctx, cancel := context.WithCancel(ctx)
	it := &Iterator{ctx: ctx, cancel: cancel, pending: make(chan *slot, l.cfg.Prefetch), loader: l, epoch: epoch}
	if start < 0 {
		it.err = fmt.Errorf("data: loader: start batch %d is negative", start)
		close(it.pending)
		return it
	}
	order := l.Order(epoch)
	nb, bs := l.NumBatches(), l.cfg.BatchSize
	jobs := make(chan job)
	it.wg.Add(1 + l.cfg.Workers)
	go func() { // dispatcher
		defer it.wg.Done()
		defer close(jobs)
		defer close(it.pending)
		for b := start; b < nb; b++ {
			idx := order[b*bs : min((b+1)*bs, len(order))]
			s := &slot{index: b, indices: idx, samples: make([]Sample, len(idx)), errs: make([]error, len(idx)), done: make(chan struct{})}
			s.left.Store(int32(len(idx)))
			select {
			case it.pending <- s:
			case <-ctx.Done():
				return
			}
			for k := range idx {
				select {
				case jobs <- job{s, k}:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	for range l.cfg.Workers {
		go func() {
			defer it.wg.Done()
			for {
				var j job
				var ok bool
				select {
				case j, ok = <-jobs:
					if !ok {
						return
					}
				case <-ctx.Done():
					return
				}
				j.s.samples[j.k], j.s.errs[j.k] = l.Load(epoch, j.s.indices[j.k])
				if j.s.left.Add(-1) == 0 {
					close(j.s.done)
				}
			}
		}()
	}
	return it
}

// Next returns the next batch, io.EOF after the last one, or the context's
// error once it is cancelled. Under OnError Fail, the first failing sample
// ends the epoch with its error; under Skip it is left out of its batch (a
// batch whose samples all fail is passed over).
func (it *Iterator) Next() (Batch, error) {
	for {
		if it.err != nil {
			return Batch{}, it.err
		}
		if err := it.ctx.Err(); err != nil {
			it.finish(err) // a cancelled epoch yields nothing more, even if ready
			continue
		}
		var s *slot
		var ok bool
		select {
		case s, ok = <-it.pending:
		case <-it.ctx.Done():
		}
		if s == nil && !ok && it.ctx.Err() == nil {
			it.finish(io.EOF)
			continue
		}
		if s == nil {
			it.finish(it.ctx.Err())
			continue
		}
		select {
		case <-s.done:
		case <-it.ctx.Done():
			it.finish(it.ctx.Err())
			continue
		}
		b := Batch{Epoch: it.epoch, Index: s.index}
		for k, err := range s.errs {
			if err != nil {
				if it.loader.cfg.OnError == Fail {
					it.finish(err)
					return Batch{}, err
				}
				it.loader.report.add(&Problem{Kind: LoadFailed, File: fmt.Sprintf("sample %d", s.indices[k]), Detail: err.Error(), Action: "left out of its batch", Err: err})
				continue
			}
			b.Samples = append(b.Samples, s.samples[k])
			b.Indices = append(b.Indices, s.indices[k])
		}
		if len(b.Samples) == 0 {
			continue
		}
		return b, nil
	}
}

// finish records err as the iterator's final result and stops everything.
func (it *Iterator) finish(err error) {
	if it.err == nil {
		it.err = err
	}
	it.Close()
}

// Close stops the workers and waits for them; Next then returns an error.
// It is safe to call more than once.
func (it *Iterator) Close() {
	it.once.Do(func() {
		it.cancel()
		it.wg.Wait()
		if it.err == nil {
			it.err = errors.New("data: loader: iterator closed")
		}
	})
}

// Images returns the batch's images as (3,H,W) tensors in [0,1].
func (b Batch) Images() ([]*tensor.Tensor, error) {
	out := make([]*tensor.Tensor, len(b.Samples))
	for i, s := range b.Samples {
		var err error
		if out[i], err = s.Tensor(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// BoxTensors returns each sample's boxes as an (N,4) tensor.
func (b Batch) BoxTensors() []*tensor.Tensor {
	out := make([]*tensor.Tensor, len(b.Samples))
	for i, s := range b.Samples {
		out[i] = s.BoxTensor()
	}
	return out
}

// Labels returns each sample's labels.
func (b Batch) Labels() [][]int {
	out := make([][]int, len(b.Samples))
	for i, s := range b.Samples {
		out[i] = s.Labels
	}
	return out
}

// Padded returns the images zero-padded into one (N,3,H,W) tensor, H and W
// rounded up to a multiple of sizeDivisible (lib/transform.BatchImages). A
// model's own transform normally does this after resizing.
func (b Batch) Padded(sizeDivisible int) (*tensor.Tensor, error) {
	imgs, err := b.Images()
	if err != nil {
		return nil, err
	}
	t, err := transform.BatchImages(imgs, sizeDivisible)
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	return t, nil
}
