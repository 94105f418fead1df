package data

import (
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeImage writes a w x h test image (a gradient) as JPEG or PNG by the
// file extension.
func writeImage(t *testing.T, path string, w, h int) {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{uint8(x * 255 / w), uint8(y * 255 / h), 128, 255})
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if strings.HasSuffix(path, ".png") {
		err = png.Encode(f, img)
	} else {
		err = jpeg.Encode(f, img, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

type vocObj struct {
	name           string
	x1, y1, x2, y2 string
	difficult      bool
}

type vocImg struct {
	id     string
	w, h   int // annotated size
	fileW  int // real image width if different (0: w)
	objs   []vocObj
	image  string // "" normal JPEG, "missing", "corrupt"
	rawXML string // replaces the generated annotation
}

func obj(name string, x1, y1, x2, y2 float64) vocObj {
	f := func(v float64) string { return fmt.Sprint(v) }
	return vocObj{name: name, x1: f(x1), y1: f(y1), x2: f(x2), y2: f(y2)}
}

// writeVOC lays out a VOC dataset under dir with split "all" (every image)
// and "first" (the first image).
func writeVOC(t *testing.T, dir string, imgs []vocImg) string {
	t.Helper()
	var ids []string
	for _, im := range imgs {
		ids = append(ids, im.id)
		ann := filepath.Join(dir, "Annotations", im.id+".xml")
		if im.rawXML != "" {
			writeFile(t, ann, im.rawXML)
		} else {
			var sb strings.Builder
			fmt.Fprintf(&sb, "<annotation><filename>%s.jpg</filename><size><width>%d</width><height>%d</height><depth>3</depth></size>\n", im.id, im.w, im.h)
			for _, o := range im.objs {
				d := 0
				if o.difficult {
					d = 1
				}
				fmt.Fprintf(&sb, "<object><name>%s</name><difficult>%d</difficult><bndbox><xmin>%s</xmin><ymin>%s</ymin><xmax>%s</xmax><ymax>%s</ymax></bndbox></object>\n", o.name, d, o.x1, o.y1, o.x2, o.y2)
			}
			sb.WriteString("</annotation>\n")
			writeFile(t, ann, sb.String())
		}
		imgPath := filepath.Join(dir, "JPEGImages", im.id+".jpg")
		if err := os.MkdirAll(filepath.Dir(imgPath), 0o755); err != nil {
			t.Fatal(err)
		}
		switch im.image {
		case "":
			w := im.w
			if im.fileW > 0 {
				w = im.fileW
			}
			writeImage(t, imgPath, w, im.h)
		case "corrupt":
			writeFile(t, imgPath, "this is not a JPEG")
		}
	}
	writeFile(t, filepath.Join(dir, "ImageSets", "Main", "all.txt"), strings.Join(ids, "\n")+"\n")
	writeFile(t, filepath.Join(dir, "ImageSets", "Main", "first.txt"), ids[0]+"\n")
	return dir
}
