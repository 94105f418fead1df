package train

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
)

// Record is one optimizer step.
type Record struct {
	// Epoch and Step place the step (Step counts optimizer steps from 0).
	Epoch int `json:"epoch"`
	Step  int `json:"step"`
	// Losses are the step's losses averaged over its micro-batches, under
	// torchvision's keys plus "loss" for the total.
	Losses map[string]float32 `json:"losses"`
	// LR is the learning rate used; Scale the loss scale (1 without AMP).
	LR    float64 `json:"lr"`
	Scale float64 `json:"scale"`
	// GradNorm is the global gradient norm before clipping (Inf when the
	// step was skipped).
	GradNorm float64 `json:"grad_norm"`
	// Skipped marks a step AMP skipped, with the reason.
	Skipped    bool   `json:"skipped,omitempty"`
	SkipReason string `json:"skip_reason,omitempty"`
	// Seconds is the step's duration; WallTime its end in Unix seconds.
	Seconds  float64 `json:"seconds"`
	WallTime float64 `json:"wall_time"`
}

// History is the record of every optimizer step.
type History struct {
	Records []Record `json:"records"`
}

// LossKeys returns the loss names recorded, sorted, "loss" first.
func (h *History) LossKeys() []string {
	set := map[string]bool{}
	for _, r := range h.Records {
		for k := range r.Losses {
			set[k] = true
		}
	}
	keys := make([]string, 0, len(set))
	for k := range set {
		if k != "loss" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	if set["loss"] {
		keys = append([]string{"loss"}, keys...)
	}
	return keys
}

// Series returns one loss (by key) per step, for plotting.
func (h *History) Series(key string) []float64 {
	out := make([]float64, len(h.Records))
	for i, r := range h.Records {
		out[i] = float64(r.Losses[key])
	}
	return out
}

// WriteCSV writes one row per step: epoch, step, the losses (LossKeys
// order), lr, scale, grad_norm, skipped, seconds, wall_time.
func (h *History) WriteCSV(w io.Writer) error {
	keys := h.LossKeys()
	cw := csv.NewWriter(w)
	head := append([]string{"epoch", "step"}, keys...)
	head = append(head, "lr", "scale", "grad_norm", "skipped", "seconds", "wall_time")
	if err := cw.Write(head); err != nil {
		return fmt.Errorf("train: csv: %w", err)
	}
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	for _, r := range h.Records {
		row := []string{strconv.Itoa(r.Epoch), strconv.Itoa(r.Step)}
		for _, k := range keys {
			row = append(row, strconv.FormatFloat(float64(r.Losses[k]), 'g', -1, 32))
		}
		row = append(row, f(r.LR), f(r.Scale), f(r.GradNorm), strconv.FormatBool(r.Skipped), f(r.Seconds), f(r.WallTime))
		if err := cw.Write(row); err != nil {
			return fmt.Errorf("train: csv: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("train: csv: %w", err)
	}
	return nil
}

// WriteJSON writes the history as {"records": [...]}. Infinite gradient
// norms (skipped steps) are written as -1, which JSON can hold.
func (h *History) WriteJSON(w io.Writer) error {
	out := History{Records: make([]Record, len(h.Records))}
	for i, r := range h.Records {
		if r.GradNorm != r.GradNorm || r.GradNorm > 1e308 {
			r.GradNorm = -1
		}
		out.Records[i] = r
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	if err := enc.Encode(out); err != nil {
		return fmt.Errorf("train: json: %w", err)
	}
	return nil
}

// ReadHistoryJSON reads what WriteJSON wrote.
func ReadHistoryJSON(r io.Reader) (*History, error) {
	var h History
	if err := json.NewDecoder(r).Decode(&h); err != nil {
		return nil, fmt.Errorf("train: json history: %w", err)
	}
	return &h, nil
}
