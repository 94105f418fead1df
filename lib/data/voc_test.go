package data

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/detlab/detlab/lib/box"
)

var good = vocImg{id: "a", w: 64, h: 48, objs: []vocObj{obj("cat", 1, 2, 30, 40), obj("dog", 10, 10, 64, 48)}}

func TestOpenVOCClean(t *testing.T) {
	dir := writeVOC(t, t.TempDir(), []vocImg{good, {id: "b", w: 32, h: 32, objs: []vocObj{{name: "cat", x1: "1.5", y1: "2", x2: "3", y2: "4", difficult: true}}}})
	ds, err := OpenVOC(dir, "all")
	if err != nil {
		t.Fatal(err)
	}
	if !ds.Report().OK() || ds.Len() != 2 || ds.Report().Boxes() != 3 {
		t.Fatalf("report %v, len %d", ds.Report(), ds.Len())
	}
	if got, want := ds.Classes(), []string{Background, "cat", "dog"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("classes %v, want %v", got, want)
	}
	s, err := ds.Sample(0)
	if err != nil {
		t.Fatal(err)
	}
	if s.ID != "a" || s.Width != 64 || s.Height != 48 || !reflect.DeepEqual(s.Labels, []int{1, 2}) ||
		!reflect.DeepEqual(s.Boxes, []box.Box{box.New(1, 2, 30, 40), box.New(10, 10, 64, 48)}) || !reflect.DeepEqual(s.Difficult, []bool{false, false}) {
		t.Fatalf("sample %+v", s)
	}
	if err := s.Check(ds.NumClasses()); err != nil {
		t.Fatal(err)
	}
	s, _ = ds.Sample(1)
	if !reflect.DeepEqual(s.Boxes, []box.Box{box.New(1.5, 2, 3, 4)}) || !s.Difficult[0] {
		t.Fatalf("sample b %+v", s)
	}
	// The "first" split shares the labels discovered from all files.
	first, err := OpenVOC(dir, "first")
	if err != nil || first.Len() != 1 || !reflect.DeepEqual(first.Classes(), ds.Classes()) {
		t.Fatalf("first split: %v, %v", first, err)
	}
	// Fixed classes reorder labels.
	fixed, err := OpenVOC(dir, "all", Options{Classes: []string{"dog", "cat"}})
	if err != nil {
		t.Fatal(err)
	}
	s, _ = fixed.Sample(0)
	if !reflect.DeepEqual(s.Labels, []int{2, 1}) {
		t.Fatalf("fixed labels %v", s.Labels)
	}
	if _, err := ds.Sample(2); err == nil {
		t.Fatal("index out of range accepted")
	}
	splits, err := VOCSplits(dir)
	if err != nil || !reflect.DeepEqual(splits, []string{"all", "first"}) {
		t.Fatalf("splits %v %v", splits, err)
	}
}

func TestOpenVOCValidation(t *testing.T) {
	tests := []struct {
		name      string
		img       vocImg
		classes   []string
		kind      Kind
		sentinel  error // nil: always fixed, Fail does not error
		wantBoxes int   // boxes kept in total (good has 2)
		wantLen   int
		wantBox   *box.Box // the kept box of the bad image, if any
		inMessage string
	}{
		{"zero area", vocImg{id: "z", w: 50, h: 50, objs: []vocObj{obj("cat", 5, 5, 5, 20), obj("cat", 1, 1, 9, 9)}}, nil, ZeroArea, nil, 3, 2, nil, "object 0 (cat)"},
		{"clipped", vocImg{id: "c", w: 50, h: 50, objs: []vocObj{obj("cat", -3, 10, 60, 20)}}, nil, Clipped, nil, 3, 2, bp(0, 10, 50, 20), "object 0"},
		{"outside", vocImg{id: "o", w: 50, h: 50, objs: []vocObj{obj("cat", 60, 10, 70, 20)}}, nil, Outside, nil, 2, 2, nil, "object 0"},
		{"size mismatch", vocImg{id: "m", w: 50, h: 50, fileW: 40, objs: []vocObj{obj("cat", 1, 1, 30, 20)}}, nil, SizeMismatch, nil, 3, 2, bp(1, 1, 30, 20), "annotated 50x50, image 40x50"},
		{"xywh", vocImg{id: "x", w: 100, h: 100, objs: []vocObj{obj("cat", 10, 20, 5, 30)}}, nil, LooksXYWH, ErrLooksXYWH, 2, 2, nil, "object 0 (cat)"},
		{"inverted", vocImg{id: "i", w: 100, h: 100, objs: []vocObj{obj("cat", 90, 20, 80, 30)}}, nil, InvalidBox, ErrInvalidBox, 2, 2, nil, "x2 < x1"},
		{"unknown class", vocImg{id: "u", w: 50, h: 50, objs: []vocObj{obj("cow", 1, 1, 9, 9)}}, []string{"cat", "dog"}, UnknownClass, ErrUnknownClass, 2, 2, nil, `class "cow"`},
		{"missing image", vocImg{id: "mi", w: 50, h: 50, objs: []vocObj{obj("cat", 1, 1, 9, 9)}, image: "missing"}, nil, MissingImage, ErrMissingImage, 2, 1, nil, "mi.jpg"},
		{"corrupt image", vocImg{id: "ci", w: 50, h: 50, objs: []vocObj{obj("cat", 1, 1, 9, 9)}, image: "corrupt"}, nil, CorruptImage, ErrCorruptImage, 2, 1, nil, "ci.jpg"},
		{"malformed XML", vocImg{id: "mx", w: 50, h: 50, rawXML: "<annotation><object><name>cat</name>"}, nil, Malformed, ErrMalformed, 2, 1, nil, "mx.xml"},
		{"bad number", vocImg{id: "bn", w: 50, h: 50, objs: []vocObj{{name: "cat", x1: "1", y1: "one", x2: "9", y2: "9"}}}, nil, Malformed, ErrMalformed, 2, 1, nil, `ymin "one" is not a number`},
		{"no bndbox", vocImg{id: "nb", w: 50, h: 50, rawXML: "<annotation><object><name>cat</name></object></annotation>"}, nil, Malformed, ErrMalformed, 2, 1, nil, "no <bndbox>"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeVOC(t, t.TempDir(), []vocImg{good, tc.img})
			classes := tc.classes
			if classes == nil {
				classes = []string{"cat", "dog"}
			}
			ds, err := OpenVOC(dir, "all", Options{Classes: classes})
			if err != nil {
				t.Fatalf("Skip: %v", err)
			}
			rep := ds.Report()
			if rep.Count(tc.kind) != 1 || rep.Total() != 1 {
				t.Fatalf("want one %s, report:\n%v", tc.kind, rep)
			}
			if rep.Boxes() != tc.wantBoxes || ds.Len() != tc.wantLen {
				t.Fatalf("kept %d boxes in %d images, want %d in %d:\n%v", rep.Boxes(), ds.Len(), tc.wantBoxes, tc.wantLen, rep)
			}
			p := rep.Problems()[0]
			if !strings.Contains(p.File, tc.img.id) || !strings.Contains(p.String(), tc.inMessage) {
				t.Fatalf("problem %q does not name the file %s and %q", p.String(), tc.img.id, tc.inMessage)
			}
			if !strings.Contains(rep.String(), tc.kind.String()) {
				t.Fatalf("report string lacks %s:\n%v", tc.kind, rep)
			}
			if tc.wantBox != nil {
				s, err := ds.Sample(1)
				if err != nil {
					t.Fatal(err)
				}
				if len(s.Boxes) != 1 || s.Boxes[0] != *tc.wantBox {
					t.Fatalf("kept boxes %v, want %v", s.Boxes, *tc.wantBox)
				}
				if err := s.Check(ds.NumClasses()); err != nil {
					t.Fatal(err)
				}
			}
			_, err = OpenVOC(dir, "all", Options{Classes: classes, OnError: Fail})
			if tc.sentinel == nil {
				if err != nil {
					t.Fatalf("Fail on a fixable %s: %v", tc.kind, err)
				}
				return
			}
			if !errors.Is(err, tc.sentinel) {
				t.Fatalf("Fail: got %v, want %v", err, tc.sentinel)
			}
			if !strings.Contains(err.Error(), tc.img.id) || !strings.Contains(err.Error(), tc.inMessage) {
				t.Fatalf("error %q does not name the file and %q", err, tc.inMessage)
			}
		})
	}
}

func TestOpenVOCErrors(t *testing.T) {
	dir := writeVOC(t, t.TempDir(), []vocImg{good})
	tests := []struct {
		name, root, split string
		opts              []Options
		want              string
	}{
		{"no such split", dir, "val", nil, `split "val" not found`},
		{"no Annotations", t.TempDir(), "all", nil, "no Annotations folder"},
		{"two options", dir, "all", []Options{{}, {}}, "at most one Options"},
		{"bad policy", dir, "all", []Options{{OnError: 7}}, "unknown OnError"},
		{"duplicate class", dir, "all", []Options{{Classes: []string{"cat", "cat"}}}, "listed twice"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := OpenVOC(tc.root, tc.split, tc.opts...)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "data: ") {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
	// A parent folder with exactly one VOC dataset inside is accepted.
	parent := t.TempDir()
	writeVOC(t, parent+"/VOC", []vocImg{good})
	if ds, err := OpenVOC(parent, "all"); err != nil || ds.Len() != 1 {
		t.Fatalf("parent folder: %v", err)
	}
	// The whole Annotations folder when split is "".
	if ds, err := OpenVOC(dir, ""); err != nil || ds.Len() != 1 {
		t.Fatalf(`split "": %v`, err)
	}
	// A corrupt image found only when read (NoImageCheck) names the file.
	bad := writeVOC(t, t.TempDir(), []vocImg{{id: "late", w: 10, h: 10, image: "corrupt"}})
	ds, err := OpenVOC(bad, "all", Options{NoImageCheck: true})
	if err != nil || ds.Len() != 1 {
		t.Fatalf("NoImageCheck: %v", err)
	}
	if _, err := ds.Sample(0); !errors.Is(err, ErrCorruptImage) || !strings.Contains(err.Error(), "late.jpg") {
		t.Fatalf("late corrupt image: %v", err)
	}
}

func TestOptionsDropEmpty(t *testing.T) {
	dir := writeVOC(t, t.TempDir(), []vocImg{good, {id: "empty", w: 20, h: 20}})
	for _, drop := range []bool{false, true} {
		ds, err := OpenVOC(dir, "all", Options{DropEmpty: drop})
		if err != nil {
			t.Fatal(err)
		}
		if want := map[bool]int{false: 2, true: 1}[drop]; ds.Len() != want {
			t.Fatalf("DropEmpty %v: %d images, want %d", drop, ds.Len(), want)
		}
	}
}

func bp(x1, y1, x2, y2 float32) *box.Box { b := box.New(x1, y1, x2, y2); return &b }
