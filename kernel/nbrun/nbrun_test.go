package nbrun

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/detlab/detlab/kernel/display"
	"github.com/detlab/detlab/kernel/session"
)

// fakeEngine runs a tiny command language: "print:a|b" streams a and b,
// "err" fails, "img" displays a PNG, "bar" displays then updates a progress
// display, "upd" updates it from a later cell, "clear" clears, "sleep" waits
// for ctx, "1+1" returns 2, "read" asks for input, anything else returns nothing.
type fakeEngine struct{ ran []string }

func (e *fakeEngine) Execute(ctx context.Context, code string, out session.Output) (*display.Data, error) {
	e.ran = append(e.ran, code)
	switch {
	case strings.HasPrefix(code, "print:"):
		for _, p := range strings.Split(strings.TrimPrefix(code, "print:"), "|") {
			out.Stream("stdout", p)
		}
	case code == "mixed":
		out.Stream("stdout", "a")
		out.Stream("stderr", "b")
		out.Stream("stdout", "c")
	case code == "err":
		return nil, &session.ExecError{Name: "CompileError", Value: "undefined: x", Traceback: []string{"cell:1:1: undefined: x"}}
	case code == "img":
		out.Display(display.Data{MIME: map[string]any{"image/png": "iVBORw0KGgo=", "text/plain": "<image>"}})
	case code == "bar":
		out.Display(display.Data{MIME: map[string]any{"text/plain": "0%"}, DisplayID: "p"})
		out.Update(display.Data{MIME: map[string]any{"text/plain": "50%"}, DisplayID: "p"})
	case code == "upd":
		out.Update(display.Data{MIME: map[string]any{"text/plain": "100%"}, DisplayID: "p"})
	case code == "clear":
		out.Stream("stdout", "gone")
		out.Clear(false)
		out.Stream("stdout", "old")
		out.Clear(true)
		out.Stream("stdout", "new")
	case code == "sleep":
		<-ctx.Done()
		return nil, &session.ExecError{Name: "Interrupted", Value: ctx.Err().Error()}
	case code == "1+1":
		return &display.Data{MIME: map[string]any{"text/plain": "2"}}, nil
	case code == "read":
		if _, err := out.Input("?", false); !errors.Is(err, ErrNoStdin) {
			return nil, errors.New("input did not fail")
		}
	case code == "boom":
		panic("engine bug")
	}
	return nil, nil
}

func notebook(t *testing.T, sources ...string) *Notebook {
	t.Helper()
	nb := &Notebook{NBFormat: 4, NBFormatMinor: 4}
	for _, s := range sources {
		nb.Cells = append(nb.Cells, &Cell{CellType: "code", Source: s})
	}
	return nb
}

func texts(c *Cell) string {
	var parts []string
	for _, o := range c.Outputs {
		switch o["output_type"] {
		case "stream":
			parts = append(parts, o["name"].(string)+":"+o["text"].(string))
		case "display_data", "execute_result":
			parts = append(parts, o["output_type"].(string)+":"+o["data"].(map[string]any)["text/plain"].(string))
		case "error":
			parts = append(parts, "error:"+o["ename"].(string))
		}
	}
	return strings.Join(parts, ",")
}

func TestRunOutputs(t *testing.T) {
	tests := []struct {
		sources []string
		want    []string // per cell
	}{
		{[]string{"print:a|b|c"}, []string{"stdout:abc"}},
		{[]string{"mixed"}, []string{"stdout:a,stderr:b,stdout:c"}},
		{[]string{"1+1"}, []string{"execute_result:2"}},
		{[]string{"img"}, []string{"display_data:<image>"}},
		{[]string{"bar", "upd"}, []string{"display_data:100%", ""}},
		{[]string{"clear"}, []string{"stdout:new"}},
		{[]string{"read"}, []string{""}},
		{[]string{"boom", "1+1"}, []string{"error:panic", ""}},
	}
	for _, tc := range tests {
		nb := notebook(t, tc.sources...)
		_, err := Run(context.Background(), &fakeEngine{}, nb, Options{})
		if tc.sources[0] == "boom" {
			if !errors.Is(err, ErrCellFailed) {
				t.Errorf("%v: err %v, want ErrCellFailed", tc.sources, err)
			}
		} else if err != nil {
			t.Errorf("%v: %v", tc.sources, err)
		}
		for i, c := range nb.Cells {
			if got := texts(c); got != tc.want[i] {
				t.Errorf("%v cell %d: outputs %q, want %q", tc.sources, i, got, tc.want[i])
			}
		}
	}
}

func TestRunErrorStopsOrKeepsGoing(t *testing.T) {
	for _, keep := range []bool{false, true} {
		eng := &fakeEngine{}
		nb := notebook(t, "1+1", "err", "print:after")
		res, err := Run(context.Background(), eng, nb, Options{KeepGoing: keep})
		if !errors.Is(err, ErrCellFailed) || len(res.Errors) != 1 {
			t.Fatalf("keep=%v: err %v, errors %v", keep, err, res.Errors)
		}
		ce := res.Errors[0]
		if ce.Index != 1 || ce.Count != 2 || !strings.Contains(ce.Error(), "undefined: x") {
			t.Errorf("cell error %+v / %s", ce, ce.Error())
		}
		wantRan := 2
		if keep {
			wantRan = 3
		}
		if len(eng.ran) != wantRan {
			t.Errorf("keep=%v: ran %v", keep, eng.ran)
		}
		if nb.Cells[2].ExecutionCount != nil && !keep {
			t.Errorf("cell after the error has a count")
		}
	}
}

func TestCellTimeout(t *testing.T) {
	nb := notebook(t, "sleep")
	start := time.Now()
	_, err := Run(context.Background(), &fakeEngine{}, nb, Options{CellTimeout: 50 * time.Millisecond})
	if !errors.Is(err, ErrCellFailed) || time.Since(start) > 5*time.Second {
		t.Fatalf("err %v after %v", err, time.Since(start))
	}
}

func TestReadRunWrite(t *testing.T) {
	nb, err := ReadFile("testdata/params.ipynb")
	if err != nil {
		t.Fatal(err)
	}
	if err := InjectParameters(nb, []Param{{"epochs", "5"}, {"name", "coco"}, {"lr", "0.01"}, {"debug", "true"}, {"extra", "x y"}}); err != nil {
		t.Fatal(err)
	}
	eng := &fakeEngine{}
	if _, err := Run(context.Background(), eng, nb, Options{}); err != nil {
		t.Fatal(err)
	}
	inj := nb.Cells[2]
	if !inj.HasTag("injected-parameters") || inj.Source != "// Parameters\nepochs = 5\nname = \"coco\"\nlr = 0.01\ndebug = true\nvar extra = \"x y\"\n" {
		t.Fatalf("injected cell %q tags %v", inj.Source, inj.Tags())
	}
	if len(eng.ran) != 3 || eng.ran[1] != inj.Source {
		t.Fatalf("ran %q", eng.ran)
	}
	if got := texts(nb.Cells[3]); got != "stdout:helloworld" || *nb.Cells[3].ExecutionCount != 3 {
		t.Fatalf("cell 3 outputs %q (stale output kept?)", got)
	}
	if nb.Cells[4].ExecutionCount != nil {
		t.Fatal("empty cell got an execution count")
	}
	out := filepath.Join(t.TempDir(), "out.ipynb")
	if err := nb.WriteFile(out); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(out)
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	if raw["nbformat_minor"] != 5.0 {
		t.Errorf("nbformat_minor %v", raw["nbformat_minor"])
	}
	ids := map[string]bool{}
	for i, c := range raw["cells"].([]any) {
		cm := c.(map[string]any)
		id, _ := cm["id"].(string)
		if !validID.MatchString(id) || ids[id] {
			t.Errorf("cell %d id %q", i, id)
		}
		ids[id] = true
		_, hasOut := cm["outputs"]
		_, hasCount := cm["execution_count"]
		if isCode := cm["cell_type"] == "code"; hasOut != isCode || hasCount != isCode {
			t.Errorf("cell %d (%s): outputs %v execution_count %v", i, cm["cell_type"], hasOut, hasCount)
		}
	}
	// Re-injecting replaces the injected cell.
	nb2, err := ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	InjectParameters(nb2, []Param{{"epochs", "1"}})
	n := 0
	for _, c := range nb2.Cells {
		if c.HasTag("injected-parameters") {
			n++
		}
	}
	if n != 1 || len(nb2.Cells) != len(nb.Cells) {
		t.Fatalf("%d injected cells, %d cells", n, len(nb2.Cells))
	}
}

func TestBadInput(t *testing.T) {
	for _, in := range []string{`{`, `{"nbformat": 3, "cells": []}`, `{"nbformat": 4, "cells": [null]}`,
		`{"nbformat": 4, "cells": [{"cell_type": "widget", "source": ""}]}`, `{"nbformat": 4, "cells": [{"cell_type": "code", "source": 5}]}`} {
		if _, err := Parse([]byte(in)); err == nil {
			t.Errorf("Parse(%s) accepted", in)
		}
	}
	for _, p := range []string{"noequals", "1x=2", "=3"} {
		if _, err := ParseParam(p); err == nil {
			t.Errorf("ParseParam(%q) accepted", p)
		}
	}
	nb, _ := ReadFile("testdata/params.ipynb")
	for _, p := range []Param{{"epochs", "many"}, {"debug", "yes"}, {"lr", "fast"}} {
		if err := InjectParameters(nb, []Param{p}); err == nil {
			t.Errorf("InjectParameters(%v) accepted a value of the wrong kind", p)
		}
	}
}

func TestParametersAtTopWithoutTaggedCell(t *testing.T) {
	nb := notebook(t, "print:x")
	if err := InjectParameters(nb, []Param{{"n", "2"}, {"ok", "true"}, {"s", "-1x"}}); err != nil {
		t.Fatal(err)
	}
	if nb.Cells[0].Source != "// Parameters\nvar n = 2\nvar ok = true\nvar s = \"-1x\"\n" {
		t.Fatalf("%q", nb.Cells[0].Source)
	}
}
