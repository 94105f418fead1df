package data

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// YOLO is a dataset in the YOLO text format: for each image a .txt file of
// the same name with one "class cx cy w h" line per object, the class a
// 0-based index into the names and the rest normalised by the image size.
type YOLO struct {
	labelDir string
	classes  *classTable
	entries  []entry
	report   *Report
}

// ReadNames reads a names file (coco.names, obj.names): one class name per
// line, blank lines ignored.
func ReadNames(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	defer f.Close()
	var names []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if n := strings.TrimSpace(sc.Text()); n != "" {
			names = append(names, n)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("data: read %s: %w", path, err)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("data: %s has no class names", path)
	}
	return names, nil
}

// OpenYOLO reads the .jpg/.jpeg/.png images in imageDir (sorted by name)
// and their label files in labelDir ("" means: imageDir with its last
// "images" path element replaced by "labels" when that folder exists, else
// imageDir). names are the classes in id order (class id k is label k+1);
// Options.Classes is ignored. An image without a label file has no
// objects. Coordinates outside [0,1] by more than a pixel-rounding margin
// are InvalidBox problems (pixel coordinates where normalised were
// expected); a slight overshoot is clipped.
func OpenYOLO(imageDir, labelDir string, names []string, opts ...Options) (*YOLO, error) {
	o, err := firstOptions(opts)
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, errors.New("data: yolo needs the class names (see ReadNames)")
	}
	classes, err := newClassTable(names)
	if err != nil {
		return nil, err
	}
	if labelDir == "" {
		labelDir = imageDir
		if filepath.Base(imageDir) == "images" {
			alt := filepath.Join(filepath.Dir(imageDir), "labels")
			if st, err := os.Stat(alt); err == nil && st.IsDir() {
				labelDir = alt
			}
		}
	}
	des, err := os.ReadDir(imageDir)
	if err != nil {
		return nil, fmt.Errorf("data: yolo: %w", err)
	}
	var files []string
	for _, de := range des {
		switch strings.ToLower(filepath.Ext(de.Name())) {
		case ".jpg", ".jpeg", ".png":
			if !de.IsDir() {
				files = append(files, de.Name())
			}
		}
	}
	sort.Strings(files)
	if len(files) == 0 {
		return nil, fmt.Errorf("data: yolo: no .jpg, .jpeg or .png images in %s", imageDir)
	}
	rep := newReport("yolo "+filepath.Base(filepath.Clean(imageDir)), o.MaxProblems)
	c := &checker{rep: rep, policy: o.OnError}
	// YOLO boxes are relative to the true image size, so the header is
	// always read.
	o.NoImageCheck = false
	recs := make([]record, 0, len(files))
	for _, name := range files {
		stem := strings.TrimSuffix(name, filepath.Ext(name))
		path := filepath.Join(imageDir, name)
		lfile := filepath.Join(labelDir, stem+".txt")
		w, h, err := imageSize(path)
		if err != nil {
			if perr := c.problem(imageProblem(path, path, err)); perr != nil {
				return nil, perr
			}
			continue
		}
		r := record{id: stem, path: path, file: lfile, w: w, h: h}
		objs, err := yoloObjects(lfile, w, h, len(names), c)
		if err != nil {
			return nil, err
		}
		r.objs = objs
		recs = append(recs, r)
	}
	entries, err := build(recs, classes, o, rep)
	if err != nil {
		return nil, err
	}
	return &YOLO{labelDir: labelDir, classes: classes, entries: entries, report: rep}, nil
}

// yoloMargin is how far outside [0,1] a normalised coordinate may be and
// still be clipped rather than rejected.
const yoloMargin = 0.05

func yoloObjects(file string, w, h, numNames int, c *checker) ([]object, error) {
	f, err := os.Open(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("data: yolo: %w", err)
	}
	defer f.Close()
	var objs []object
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		entry := fmt.Sprintf("line %d", line)
		bad := func(k Kind, detail string) error {
			return c.problem(&Problem{Kind: k, File: file, Entry: entry, Detail: detail, Action: "skipped box"})
		}
		fields := strings.Fields(text)
		if len(fields) != 5 {
			if err := bad(Malformed, fmt.Sprintf("want \"class cx cy w h\", got %d fields", len(fields))); err != nil {
				return nil, err
			}
			continue
		}
		cls, err := strconv.Atoi(fields[0])
		var v [4]float64
		for j := range v {
			if err == nil {
				v[j], err = strconv.ParseFloat(fields[j+1], 64)
			}
		}
		if err != nil {
			if err := bad(Malformed, fmt.Sprintf("%q: %v", text, err)); err != nil {
				return nil, err
			}
			continue
		}
		if cls < 0 || cls >= numNames {
			if err := bad(UnknownClass, fmt.Sprintf("class id %d, have %d names", cls, numNames)); err != nil {
				return nil, err
			}
			continue
		}
		cx, cy, bw, bh := v[0], v[1], v[2], v[3]
		if bw < 0 || bh < 0 || cx-bw/2 < -yoloMargin || cy-bh/2 < -yoloMargin || cx+bw/2 > 1+yoloMargin || cy+bh/2 > 1+yoloMargin {
			if err := bad(InvalidBox, fmt.Sprintf("%q is not a normalised box inside the image", text)); err != nil {
				return nil, err
			}
			continue
		}
		W, H := float64(w), float64(h)
		objs = append(objs, object{entry: entry, label: cls + 1, b: boxOf([4]float32{
			float32((cx - bw/2) * W), float32((cy - bh/2) * H), float32((cx + bw/2) * W), float32((cy + bh/2) * H)})})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("data: yolo: read %s: %w", file, err)
	}
	return objs, nil
}

// Len is the number of images.
func (d *YOLO) Len() int { return len(d.entries) }

// Classes returns the class names, Background first.
func (d *YOLO) Classes() []string { return append([]string(nil), d.classes.names...) }

// NumClasses is len(Classes()).
func (d *YOLO) NumClasses() int { return len(d.classes.names) }

// Report is what validation found when the dataset was opened.
func (d *YOLO) Report() *Report { return d.report }

// Sample decodes image i with its annotations.
func (d *YOLO) Sample(i int) (Sample, error) {
	if i < 0 || i >= len(d.entries) {
		return Sample{}, fmt.Errorf("data: yolo index %d out of range [0,%d)", i, len(d.entries))
	}
	e := &d.entries[i]
	return e.sample(filepath.Join(d.labelDir, e.id+".txt"))
}
