package data

import (
	"errors"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/detlab/detlab/lib/box"
)

const cocoGood = `{
 "images": [{"id": 7, "file_name": "a.jpg", "width": 64, "height": 48},
            {"id": 9, "file_name": "b.png", "width": 32, "height": 32}],
 "categories": [{"id": 18, "name": "dog"}, {"id": 3, "name": "cat"}],
 "annotations": [
   {"id": 1, "image_id": 7, "category_id": 3, "bbox": [1, 2, 10, 20], "iscrowd": 0},
   {"id": 2, "image_id": 7, "category_id": 18, "bbox": [5, 5, 59, 43], "iscrowd": 1},
   {"id": 3, "image_id": 9, "category_id": 18, "bbox": [0, 0, 8, 8]}%s]
}`

func writeCOCO(t *testing.T, extra string) (string, string) {
	t.Helper()
	dir := t.TempDir()
	writeImage(t, filepath.Join(dir, "img", "a.jpg"), 64, 48)
	writeImage(t, filepath.Join(dir, "img", "b.png"), 32, 32)
	file := filepath.Join(dir, "instances.json")
	writeFile(t, file, strings.Replace(cocoGood, "%s", extra, 1))
	return file, filepath.Join(dir, "img")
}

func TestOpenCOCO(t *testing.T) {
	file, imgs := writeCOCO(t, "")
	ds, err := OpenCOCO(file, imgs)
	if err != nil {
		t.Fatal(err)
	}
	if !ds.Report().OK() || ds.Len() != 2 {
		t.Fatalf("%v", ds.Report())
	}
	// Categories sorted by id: cat (3) -> 1, dog (18) -> 2.
	if got := ds.Classes(); !reflect.DeepEqual(got, []string{Background, "cat", "dog"}) {
		t.Fatalf("classes %v", got)
	}
	if ds.CategoryID(1) != 3 || ds.CategoryID(2) != 18 || ds.CategoryID(0) != 0 || ds.CategoryID(5) != 0 {
		t.Fatal("CategoryID mapping wrong")
	}
	s, err := ds.Sample(0)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(s.Boxes, []box.Box{box.New(1, 2, 11, 22), box.New(5, 5, 64, 48)}) || !reflect.DeepEqual(s.Labels, []int{1, 2}) ||
		!reflect.DeepEqual(s.Crowd, []bool{false, true}) {
		t.Fatalf("sample %+v", s)
	}
	if s, err = ds.Sample(1); err != nil || s.Width != 32 || len(s.Boxes) != 1 {
		t.Fatalf("png sample: %+v %v", s, err)
	}
}

func TestOpenCOCOValidation(t *testing.T) {
	tests := []struct {
		name, extra string
		kind        Kind
		sentinel    error
		entry       string
	}{
		{"zero area", `, {"id": 4, "image_id": 9, "category_id": 3, "bbox": [3, 3, 0, 5]}`, ZeroArea, nil, "id 4"},
		{"clipped", `, {"id": 4, "image_id": 9, "category_id": 3, "bbox": [30, 3, 10, 5]}`, Clipped, nil, "id 4"},
		{"negative size", `, {"id": 4, "image_id": 9, "category_id": 3, "bbox": [3, 3, -2, 5]}`, InvalidBox, ErrInvalidBox, "id 4"},
		{"unknown category", `, {"id": 4, "image_id": 9, "category_id": 99, "bbox": [3, 3, 2, 5]}`, UnknownClass, ErrUnknownClass, "category_id 99"},
		{"unknown image", `, {"id": 4, "image_id": 99, "category_id": 3, "bbox": [3, 3, 2, 5]}`, Malformed, ErrMalformed, "image_id 99"},
		{"short bbox", `, {"id": 4, "image_id": 9, "category_id": 3, "bbox": [3, 3, 2]}`, Malformed, ErrMalformed, "id 4"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			file, imgs := writeCOCO(t, tc.extra)
			ds, err := OpenCOCO(file, imgs)
			if err != nil {
				t.Fatal(err)
			}
			rep := ds.Report()
			if rep.Count(tc.kind) != 1 || rep.Total() != 1 || !strings.Contains(rep.Problems()[0].String(), tc.entry) {
				t.Fatalf("want one %s naming %q:\n%v", tc.kind, tc.entry, rep)
			}
			_, err = OpenCOCO(file, imgs, Options{OnError: Fail})
			if tc.sentinel == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, tc.sentinel) || !strings.Contains(err.Error(), "instances.json") || !strings.Contains(err.Error(), tc.entry) {
				t.Fatalf("Fail: %v", err)
			}
		})
	}
	// Malformed JSON is an error naming the file, whatever the policy.
	dir := t.TempDir()
	file := filepath.Join(dir, "bad.json")
	writeFile(t, file, `{"images": [`)
	if _, err := OpenCOCO(file, dir); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "bad.json") {
		t.Fatalf("malformed JSON: %v", err)
	}
	// A missing image file is skipped (Skip) or named (Fail).
	f2, imgs := writeCOCO(t, "")
	os.Remove(filepath.Join(imgs, "b.png"))
	ds, err := OpenCOCO(f2, imgs)
	if err != nil || ds.Len() != 1 || ds.Report().Count(MissingImage) != 1 {
		t.Fatalf("missing image: %v %v", err, ds.Report())
	}
	if _, err := OpenCOCO(f2, imgs, Options{OnError: Fail}); !errors.Is(err, ErrMissingImage) || !strings.Contains(err.Error(), "b.png") {
		t.Fatalf("missing image, Fail: %v", err)
	}
	// Options.Classes selects and orders categories by name.
	f3, imgs3 := writeCOCO(t, "")
	ds, err = OpenCOCO(f3, imgs3, Options{Classes: []string{"dog"}})
	if err != nil || ds.Report().Count(UnknownClass) != 1 || ds.CategoryID(1) != 18 {
		t.Fatalf("classes subset: %v %v", err, ds.Report())
	}
}

func TestOpenYOLO(t *testing.T) {
	root := t.TempDir()
	imgDir, lblDir := filepath.Join(root, "images"), filepath.Join(root, "labels")
	writeImage(t, filepath.Join(imgDir, "a.jpg"), 100, 50)
	writeImage(t, filepath.Join(imgDir, "b.png"), 40, 40)
	writeImage(t, filepath.Join(imgDir, "c.jpg"), 40, 40) // no label file
	writeFile(t, filepath.Join(imgDir, "notes.txt"), "not an image")
	writeFile(t, filepath.Join(lblDir, "a.txt"), "0 0.5 0.5 0.2 0.4\n\n1 0.1 0.1 0.2 0.2\n")
	writeFile(t, filepath.Join(lblDir, "b.txt"), strings.Join([]string{
		"1 0.5 0.5 0.5 0.5",   // fine
		"5 0.5 0.5 0.1 0.1",   // unknown class
		"0 0.5 0.5",           // malformed
		"0 50 50 20 20",       // pixels, not normalised
		"0 0.99 0.5 0.04 0.1", // slight overshoot: clipped
		"0 0.5 0.5 0 0.1",     // zero area
	}, "\n"))
	names := filepath.Join(root, "obj.names")
	writeFile(t, names, "cat\n\ndog\n")
	cls, err := ReadNames(names)
	if err != nil || !reflect.DeepEqual(cls, []string{"cat", "dog"}) {
		t.Fatalf("ReadNames %v %v", cls, err)
	}
	ds, err := OpenYOLO(imgDir, "", cls)
	if err != nil {
		t.Fatal(err)
	}
	rep := ds.Report()
	if ds.Len() != 3 || rep.Boxes() != 4 {
		t.Fatalf("len %d:\n%v", ds.Len(), rep)
	}
	for k, n := range map[Kind]int{UnknownClass: 1, Malformed: 1, InvalidBox: 1, Clipped: 1, ZeroArea: 1} {
		if rep.Count(k) != n {
			t.Fatalf("%s: %d, want %d\n%v", k, rep.Count(k), n, rep)
		}
	}
	s, err := ds.Sample(0)
	if err != nil {
		t.Fatal(err)
	}
	want := []box.Box{box.New(40, 15, 60, 35), box.New(0, 0, 20, 10)}
	for i := range want {
		if d := abs32(s.Boxes[i].X1-want[i].X1) + abs32(s.Boxes[i].Y1-want[i].Y1) + abs32(s.Boxes[i].X2-want[i].X2) + abs32(s.Boxes[i].Y2-want[i].Y2); d > 1e-4 {
			t.Fatalf("boxes %v, want %v", s.Boxes, want)
		}
	}
	if !reflect.DeepEqual(s.Labels, []int{1, 2}) {
		t.Fatalf("labels %v", s.Labels)
	}
	if s, _ := ds.Sample(2); len(s.Boxes) != 0 {
		t.Fatalf("image without labels got %v", s.Boxes)
	}
	if _, err := OpenYOLO(imgDir, "", cls, Options{OnError: Fail}); !errors.Is(err, ErrUnknownClass) || !strings.Contains(err.Error(), "b.txt: line 2") {
		t.Fatalf("Fail: %v", err)
	}
	if _, err := OpenYOLO(imgDir, "", nil); err == nil {
		t.Fatal("no names accepted")
	}
	if _, err := OpenYOLO(lblDir, "", cls); err == nil || !strings.Contains(err.Error(), "no .jpg") {
		t.Fatalf("folder without images: %v", err)
	}
}

func abs32(v float32) float32 {
	if v < 0 {
		return -v
	}
	return v
}

func TestDecodeImageModels(t *testing.T) {
	dir := t.TempDir()
	gray := image.NewGray(image.Rect(0, 0, 3, 2))
	gray.Pix = []uint8{0, 100, 255, 7, 8, 9}
	pal := image.NewPaletted(image.Rect(0, 0, 2, 1), color.Palette{color.RGBA{10, 20, 30, 255}, color.RGBA{200, 100, 0, 255}})
	pal.Pix = []uint8{1, 0}
	g16 := image.NewRGBA64(image.Rect(0, 0, 1, 1))
	g16.SetRGBA64(0, 0, color.RGBA64{0x1234, 0xabcd, 0xffff, 0xffff})
	tests := []struct {
		name string
		img  image.Image
		want [][3]uint8 // first pixels
	}{
		{"gray", gray, [][3]uint8{{0, 0, 0}, {100, 100, 100}, {255, 255, 255}}},
		{"paletted", pal, [][3]uint8{{200, 100, 0}, {10, 20, 30}}},
		{"16-bit", g16, [][3]uint8{{0x12, 0xab, 0xff}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name+".png")
			f, _ := os.Create(path)
			if err := png.Encode(f, tc.img); err != nil {
				t.Fatal(err)
			}
			f.Close()
			got, err := DecodeImage(path)
			if err != nil {
				t.Fatal(err)
			}
			for i, w := range tc.want {
				p := got.Pix[4*i:]
				if p[0] != w[0] || p[1] != w[1] || p[2] != w[2] || p[3] != 255 {
					t.Fatalf("pixel %d = %v, want %v", i, p[:4], w)
				}
			}
		})
	}
	// CMYK (as Go's JPEG decoder returns Adobe CMYK files) through ToRGBA.
	cmyk := image.NewCMYK(image.Rect(0, 0, 1, 1))
	cmyk.Set(0, 0, color.CMYK{0, 255, 255, 0}) // red
	if p := ToRGBA(cmyk).Pix; p[0] != 255 || p[1] != 0 || p[2] != 0 || p[3] != 255 {
		t.Fatalf("CMYK red became %v", p[:4])
	}
	// An offset, translucent NRGBA comes back at the origin, opaque.
	n := image.NewNRGBA(image.Rect(5, 5, 7, 6))
	n.SetNRGBA(5, 5, color.NRGBA{255, 0, 0, 128})
	r := ToRGBA(n)
	if r.Rect.Min != (image.Point{}) || r.Pix[3] != 255 || r.Pix[0] != 128 {
		t.Fatalf("NRGBA: %v %v", r.Rect, r.Pix[:4])
	}
	if _, err := DecodeImage(filepath.Join(dir, "nope.png")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}
