package data_test

import (
	"context"
	"fmt"
	"image"
	"image/jpeg"
	"io"
	"os"
	"path/filepath"

	"github.com/detlab/detlab/lib/data"
)

func ExampleOpenVOC() {
	// A one-image VOC dataset; real ones are opened the same way, e.g.
	// data.OpenVOC("../shared/data/bccd/BCCD", "trainval").
	root, _ := os.MkdirTemp("", "voc")
	defer os.RemoveAll(root)
	for _, d := range []string{"Annotations", "ImageSets/Main", "JPEGImages"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	shapes, _ := data.Shapes(data.ShapesConfig{N: 1, Width: 64, Height: 48})
	s, _ := shapes.Sample(0)
	writeJPEG(filepath.Join(root, "JPEGImages", "img1.jpg"), s.Image)
	os.WriteFile(filepath.Join(root, "ImageSets/Main/train.txt"), []byte("img1\n"), 0o644)
	os.WriteFile(filepath.Join(root, "Annotations", "img1.xml"), []byte(`<annotation>
  <size><width>64</width><height>48</height></size>
  <object><name>cell</name><difficult>0</difficult>
    <bndbox><xmin>4</xmin><ymin>5</ymin><xmax>30</xmax><ymax>40</ymax></bndbox></object>
  <object><name>cell</name>
    <bndbox><xmin>10</xmin><ymin>10</ymin><xmax>10</xmax><ymax>20</ymax></bndbox></object>
  <object><name>cell</name>
    <bndbox><xmin>50</xmin><ymin>10</ymin><xmax>70</xmax><ymax>20</ymax></bndbox></object>
</annotation>`), 0o644)

	ds, err := data.OpenVOC(root, "train") // or data.OpenVOC(root, "train", data.Options{OnError: data.Fail})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(ds.Len(), "image, classes", ds.Classes())
	rep := ds.Report()
	fmt.Println("kept", rep.Boxes(), "boxes; zero-area:", rep.Count(data.ZeroArea), "clipped:", rep.Count(data.Clipped))
	smp, _ := ds.Sample(0)
	fmt.Println(smp.Boxes, smp.Labels, smp.Width, smp.Height)
	// Output:
	// 1 image, classes [__background__ cell]
	// kept 2 boxes; zero-area: 1 clipped: 1
	// [[4 5 30 40] [50 10 64 20]] [1 1] 64 48
}

func ExampleShapes() {
	ds, err := data.Shapes(data.ShapesConfig{N: 1000, Width: 320, Height: 320, Seed: 1})
	if err != nil {
		fmt.Println(err)
		return
	}
	s, _ := ds.Sample(999) // any index, drawn on demand
	fmt.Println(ds.Len(), ds.Classes())
	fmt.Println(s.ID, s.Width, s.Height, len(s.Boxes) == len(s.Labels))
	// Output:
	// 1000 [__background__ rectangle ellipse triangle cross]
	// shapes-999 320 320 true
}

func ExampleLoader() {
	ds, _ := data.Shapes(data.ShapesConfig{N: 10, Width: 128, Height: 128})
	ld, err := data.NewLoader(ds, data.LoaderConfig{
		BatchSize: 4, Workers: 2, Shuffle: true, Seed: 1,
		Augment: data.Pipeline{data.HFlip{P: 0.5}, data.ScaleJitter{Min: 0.8, Max: 1.25},
			data.ColorJitter{Brightness: 0.2, Contrast: 0.2, Saturation: 0.2, Hue: 0.02}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	it := ld.Epoch(context.Background(), 0) // cancel the context to stop early
	defer it.Close()
	for {
		b, err := it.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			fmt.Println(err)
			return
		}
		images, _ := b.Images() // (3,H,W) tensors for the model
		fmt.Println("batch", b.Index, "samples", len(b.Samples), "tensors", len(images))
	}
	// Output:
	// batch 0 samples 4 tensors 4
	// batch 1 samples 4 tensors 4
	// batch 2 samples 2 tensors 2
}

func writeJPEG(path string, img image.Image) {
	f, err := os.Create(path)
	if err != nil {
		return
	}
	defer f.Close()
	jpeg.Encode(f, img, nil)
}
