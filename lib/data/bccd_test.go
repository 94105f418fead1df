package data

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/detlab/detlab/internal/golden"
)

// bccdRoot is the shared BCCD copy (never copied into the repository).
func bccdRoot(t testing.TB) string {
	t.Helper()
	root := filepath.Join(golden.SharedDir(), "data", "bccd", "BCCD")
	if _, err := os.Stat(filepath.Join(root, "Annotations")); err != nil {
		t.Skipf("BCCD not present at %s: %v", root, err)
	}
	return root
}

func TestBCCD(t *testing.T) {
	root := bccdRoot(t)
	for _, split := range []string{"trainval", "test", "train", "val"} {
		t.Run(split, func(t *testing.T) {
			ids, err := readLines(filepath.Join(root, "ImageSets", "Main", split+".txt"))
			if err != nil {
				t.Fatal(err)
			}
			ds, err := OpenVOC(root, split)
			if err != nil {
				t.Fatal(err)
			}
			if ds.Len() != len(ids) {
				t.Fatalf("%d images, the split file lists %d\n%v", ds.Len(), len(ids), ds.Report())
			}
			if got := ds.Classes(); !reflect.DeepEqual(got, []string{Background, "Platelets", "RBC", "WBC"}) {
				t.Fatalf("classes %v", got)
			}
			rep := ds.Report()
			// The only problems in BCCD are two zero-area RBC boxes
			// (BloodImage_00338 and _00343, both in trainval).
			for _, p := range rep.Problems() {
				if p.Kind != ZeroArea {
					t.Fatalf("unexpected problem %v", p)
				}
			}
			if split == "trainval" {
				if rep.Count(ZeroArea) != 2 || rep.Total() != 2 {
					t.Fatalf("want the two zero-area boxes:\n%v", rep)
				}
				s := rep.String()
				for _, want := range []string{"BloodImage_00338.xml", "BloodImage_00343.xml", "zero-area box: 2"} {
					if !strings.Contains(s, want) {
						t.Fatalf("report lacks %q:\n%s", want, s)
					}
				}
				t.Log(rep)
			}
			if split == "test" && rep.Total() != 0 {
				t.Fatalf("test split problems:\n%v", rep)
			}
		})
	}
	all, err := OpenVOC(root, "")
	if err != nil {
		t.Fatal(err)
	}
	// 4155 RBC + 372 WBC + 361 Platelets annotated, two of them zero-area.
	if all.Report().Boxes() != 4155+372+361-2 || all.Report().Count(ZeroArea) != 2 {
		t.Fatalf("all annotations:\n%v", all.Report())
	}
	s, err := all.Sample(0)
	if err != nil {
		t.Fatal(err)
	}
	if s.Width != 640 || s.Height != 480 || s.Check(all.NumClasses()) != nil {
		t.Fatalf("sample 0: %dx%d %v", s.Width, s.Height, s.Check(all.NumClasses()))
	}
}
