package train

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"math"
	"os/exec"
	"strconv"
	"testing"

	"github.com/detlab/detlab/internal/pyenv"
	"github.com/detlab/detlab/lib/nn"
)

// smallHistory trains the toy model for 2 epochs of 3 steps with AMP and
// one skipped step (step 2).
func smallHistory(t *testing.T) *History {
	t.Helper()
	ds := newToyData(6, toySize, 8)
	tr, _ := toyTrainer(Config{Momentum: 0.9, BatchSize: 2, AMP: true, Schedule: StepLR(1, 0.5),
		AfterBackward: func(step int, ps []*nn.Param) {
			if step == 2 {
				ps[1].Grad.Data()[0] = float32(math.NaN())
			}
		}})
	h, err := tr.Fit(context.Background(), ds, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Records) != 6 || !h.Records[2].Skipped {
		t.Fatalf("history: %d records, step 2 skipped %v", len(h.Records), len(h.Records) > 2 && h.Records[2].Skipped)
	}
	return h
}

func TestHistoryCSVAndJSON(t *testing.T) {
	h := smallHistory(t)
	var buf bytes.Buffer
	if err := h.WriteCSV(&buf); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	wantHead := []string{"epoch", "step", "loss", "loss_xy1", "loss_xy2", "lr", "scale", "grad_norm", "skipped", "seconds", "wall_time"}
	if len(rows) != 7 || len(rows[0]) != len(wantHead) {
		t.Fatalf("csv: %d rows, header %v", len(rows), rows[0])
	}
	for i, k := range wantHead {
		if rows[0][i] != k {
			t.Errorf("csv column %d: %q, want %q", i, rows[0][i], k)
		}
	}
	for i, r := range h.Records {
		row := rows[i+1]
		loss, _ := strconv.ParseFloat(row[2], 32)
		lr, _ := strconv.ParseFloat(row[5], 64)
		if float32(loss) != r.Losses["loss"] || lr != r.LR || row[8] != strconv.FormatBool(r.Skipped) {
			t.Errorf("csv row %d: %v, record %+v", i, row, r)
		}
	}
	buf.Reset()
	if err := h.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	back, err := ReadHistoryJSON(&buf)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range back.Records {
		if r.Losses["loss"] != h.Records[i].Losses["loss"] || r.Scale != h.Records[i].Scale || r.Step != i {
			t.Errorf("json record %d: %+v, want %+v", i, r, h.Records[i])
		}
	}
	if back.Records[2].GradNorm != -1 || back.Records[3].Scale != 32768 || back.Records[1].LR != 0.05 || back.Records[3].LR != 0.025 {
		t.Errorf("json: %+v %+v", back.Records[2], back.Records[3])
	}
	if _, err := ReadHistoryJSON(bytes.NewBufferString("{")); err == nil {
		t.Error("truncated JSON: no error")
	}
}

type tbEvent struct {
	WallTime    float64            `json:"wall_time"`
	Step        int64              `json:"step"`
	FileVersion string             `json:"file_version"`
	Values      map[string]float64 `json:"values"`
}

// TestTensorBoardIndependentReader decodes the event file with Python's
// protobuf (hand-built descriptors, and protoc-compiled ones when protoc is
// installed) and a CRC32C written in Python, and compares with the history.
func TestTensorBoardIndependentReader(t *testing.T) {
	py := pyenv.Require(t, "install Debian's python3-protobuf (and protobuf-compiler for the protoc variant)", "google.protobuf")
	h := smallHistory(t)
	path, err := h.WriteTensorBoard(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	modes := [][]string{{}}
	if _, err := exec.LookPath("protoc"); err == nil {
		modes = append(modes, []string{"--protoc"})
	} else {
		t.Log("protoc not found (Debian protobuf-compiler): checking with hand-built descriptors only")
	}
	for _, mode := range modes {
		out, err := exec.Command(py, append([]string{"testdata/read_tfevents.py", path}, mode...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("reader %v: %v\n%s", mode, err, out)
		}
		var evs []tbEvent
		if err := json.Unmarshal(out, &evs); err != nil {
			t.Fatalf("reader output: %v\n%s", err, out)
		}
		if len(evs) != len(h.Records)+1 || evs[0].FileVersion != "brain.Event:2" {
			t.Fatalf("%v: %d events, first %+v", mode, len(evs), evs[0])
		}
		for i, r := range h.Records {
			e := evs[i+1]
			want := map[string]float64{"loss/total": float64(r.Losses["loss"]), "loss/loss_xy1": float64(r.Losses["loss_xy1"]),
				"loss/loss_xy2": float64(r.Losses["loss_xy2"]), "lr": float64(float32(r.LR)), "amp/scale": r.Scale}
			if !r.Skipped {
				want["grad_norm"] = float64(float32(r.GradNorm))
			}
			if e.Step != int64(r.Step) || math.Abs(e.WallTime-r.WallTime) > 1e-6 || len(e.Values) != len(want) {
				t.Errorf("%v event %d: step %d wall %v values %v", mode, i, e.Step, e.WallTime, e.Values)
			}
			for k, v := range want {
				if e.Values[k] != v {
					t.Errorf("%v event %d %s: %v, want %v", mode, i, k, e.Values[k], v)
				}
			}
		}
	}
}

func TestTerminalReporter(t *testing.T) {
	p := Progress{Epoch: 0, Epochs: 2, Batch: 3, Batches: 5, Done: 3, Total: 10, Rate: 2, ETA: 3.5,
		Losses: map[string]float32{"loss": 1.5, "loss_classifier": 0.25}, LR: 0.005, Scale: 65536}
	want := "epoch 1/2 batch 3/5 step 3/10 2.00 it/s ETA 4s loss 1.5000 loss_classifier 0.2500 lr 0.005 scale 65536"
	if got := FormatProgress(p); got != want {
		t.Errorf("FormatProgress:\n got %q\nwant %q", got, want)
	}
	var buf bytes.Buffer
	(&Terminal{W: &buf}).Report(p)
	if buf.String() != want+"\n" {
		t.Errorf("plain: %q", buf.String())
	}
	buf.Reset()
	tty := &Terminal{W: &buf, TTY: true}
	tty.Report(p)
	p.Done = 10
	tty.Report(p)
	if s := buf.String(); s[:4] != "\r\x1b[K" || s[len(s)-1] != '\n' || bytes.Count(buf.Bytes(), []byte("\n")) != 1 {
		t.Errorf("tty: %q", s)
	}
}
