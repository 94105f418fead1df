// Package data reads object-detection datasets, checks them, makes
// synthetic ones, augments samples and loads them in parallel batches.
//
//	ds, err := data.OpenVOC("../shared/data/bccd/BCCD", "trainval")
//	fmt.Println(ds.Report())          // what was skipped, clipped or suspicious
//	ld, err := data.NewLoader(ds, data.LoaderConfig{BatchSize: 2, Shuffle: true,
//		Augment: data.Pipeline{data.HFlip{P: 0.5}}})
//	it := ld.Epoch(ctx, 0)
//	defer it.Close()
//	for {
//		b, err := it.Next()
//		if err == io.EOF {
//			break
//		}
//		images, err := b.Images() // (3,H,W) float32 tensors in [0,1]
//		...
//	}
//
// A Dataset is three methods (Len, Sample, Classes), small enough to write
// in a notebook cell. Class 0 is always "__background__", as torchvision's
// num_classes counts it, so NumClasses(ds) == len(ds.Classes()).
//
// Readers: OpenVOC (Pascal VOC XML with ImageSets/Main splits), OpenCOCO
// (an instances JSON file and an image folder) and OpenYOLO (normalised
// "class cx cy w h" text files and a names list). JPEG and PNG images are
// decoded; grayscale, paletted, CMYK and 16-bit images become 8-bit RGB
// (*image.RGBA, opaque).
//
// Annotations are checked when a dataset is opened. Zero-area boxes are
// skipped and boxes reaching outside the image are clipped, both counted;
// boxes that look like x,y,w,h, unknown class names, missing or unreadable
// images and malformed files are skipped with the reason (OnError: Skip, the
// default) or returned as an error naming the file and the entry (Fail).
// Every dataset keeps a Report of what it found.
//
// Shapes is a built-in synthetic dataset (rectangles, ellipses, triangles,
// crosses on a cluttered background) generated lazily and deterministically
// from a seed and the index: the default data for quick runs and tests.
//
// Augmenters (HFlip, ScaleJitter, ColorJitter, combined in a Pipeline) change
// the image and its boxes together and take a *rand.Rand. The Loader runs
// reading and augmentation in bounded worker goroutines with prefetching;
// each sample's random numbers derive from (seed, epoch, index), so batches
// are identical for any number of workers.
package data
