package data

import (
	"bufio"
	"encoding/xml"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// VOC is a Pascal VOC dataset split: Annotations/<id>.xml,
// ImageSets/Main/<split>.txt and JPEGImages/<id>.jpg under one root.
type VOC struct {
	root, split string
	classes     *classTable
	entries     []entry
	report      *Report
}

// OpenVOC reads the split (the name of a file in root/ImageSets/Main, such
// as "trainval" or "test"; "" means every annotation file) of the VOC
// dataset in root, the folder holding Annotations/. If root itself has no
// Annotations/ but exactly one subfolder does, that subfolder is used. At
// most one Options value may be given.
//
// Coordinates are taken as written (no -1). The difficult flag is kept in
// Sample.Difficult. Without Options.Classes the class names are gathered
// from every file in Annotations/ and sorted, so all splits share labels.
func OpenVOC(root, split string, opts ...Options) (*VOC, error) {
	o, err := firstOptions(opts)
	if err != nil {
		return nil, err
	}
	root, err = vocRoot(root)
	if err != nil {
		return nil, err
	}
	name := "voc " + filepath.Base(root)
	if split != "" {
		name += "/" + split
	}
	rep := newReport(name, o.MaxProblems)
	c := &checker{rep: rep, policy: o.OnError}

	var ids []string
	if split == "" {
		ids, err = vocAllIDs(root)
	} else {
		ids, err = readLines(filepath.Join(root, "ImageSets", "Main", split+".txt"))
		if errors.Is(err, fs.ErrNotExist) {
			avail, _ := VOCSplits(root)
			return nil, fmt.Errorf("data: voc split %q not found in %s (have %v): %w", split, filepath.Join(root, "ImageSets", "Main"), avail, err)
		}
	}
	if err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("data: voc split %q of %s lists no images", split, root)
	}

	var classes *classTable
	if o.Classes != nil {
		if classes, err = newClassTable(o.Classes); err != nil {
			return nil, err
		}
	} else {
		all, err := vocAllIDs(root)
		if err != nil {
			return nil, err
		}
		seen := map[string]bool{}
		for _, id := range all {
			a, err := parseVOCFile(filepath.Join(root, "Annotations", id+".xml"))
			if err != nil {
				continue // reported below if it is in the split
			}
			for _, ob := range a.Objects {
				if n := strings.TrimSpace(ob.Name); n != "" {
					seen[n] = true
				}
			}
		}
		names := make([]string, 0, len(seen))
		for n := range seen {
			names = append(names, n)
		}
		sort.Strings(names)
		if classes, err = newClassTable(names); err != nil {
			return nil, err
		}
	}

	recs := make([]record, 0, len(ids))
	for _, id := range ids {
		file := filepath.Join(root, "Annotations", id+".xml")
		r, err := vocRecord(root, id, file)
		if err != nil {
			var p *Problem
			if !errors.As(err, &p) {
				p = &Problem{Kind: Malformed, File: file, Detail: err.Error(), Action: "skipped image", Err: err}
				if errors.Is(err, fs.ErrNotExist) {
					p.Detail = "annotation file missing"
				}
			}
			if perr := c.problem(p); perr != nil {
				return nil, perr
			}
			continue
		}
		recs = append(recs, r)
	}
	entries, err := build(recs, classes, o, rep)
	if err != nil {
		return nil, err
	}
	return &VOC{root: root, split: split, classes: classes, entries: entries, report: rep}, nil
}

// VOCSplits lists the split names in root/ImageSets/Main.
func VOCSplits(root string) ([]string, error) {
	root, err := vocRoot(root)
	if err != nil {
		return nil, err
	}
	m, err := filepath.Glob(filepath.Join(root, "ImageSets", "Main", "*.txt"))
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	var out []string
	for _, p := range m {
		out = append(out, strings.TrimSuffix(filepath.Base(p), ".txt"))
	}
	sort.Strings(out)
	return out, nil
}

func vocRoot(root string) (string, error) {
	if st, err := os.Stat(filepath.Join(root, "Annotations")); err == nil && st.IsDir() {
		return root, nil
	}
	m, _ := filepath.Glob(filepath.Join(root, "*", "Annotations"))
	if len(m) == 1 {
		return filepath.Dir(m[0]), nil
	}
	return "", fmt.Errorf("data: voc: no Annotations folder in %s (give the folder that holds Annotations/, ImageSets/ and JPEGImages/)", root)
}

func vocAllIDs(root string) ([]string, error) {
	m, err := filepath.Glob(filepath.Join(root, "Annotations", "*.xml"))
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	ids := make([]string, len(m))
	for i, p := range m {
		ids[i] = strings.TrimSuffix(filepath.Base(p), ".xml")
	}
	sort.Strings(ids)
	return ids, nil
}

func readLines(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// VOC's per-class files carry a second column (" 1" / "-1").
		if fields := strings.Fields(sc.Text()); len(fields) > 0 {
			out = append(out, fields[0])
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("data: read %s: %w", path, err)
	}
	return out, nil
}

type vocXML struct {
	Filename string `xml:"filename"`
	Size     struct {
		Width  string `xml:"width"`
		Height string `xml:"height"`
	} `xml:"size"`
	Objects []struct {
		Name      string `xml:"name"`
		Difficult string `xml:"difficult"`
		Box       *struct {
			Xmin string `xml:"xmin"`
			Ymin string `xml:"ymin"`
			Xmax string `xml:"xmax"`
			Ymax string `xml:"ymax"`
		} `xml:"bndbox"`
	} `xml:"object"`
}

func parseVOCFile(path string) (*vocXML, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var a vocXML
	if err := xml.Unmarshal(b, &a); err != nil {
		return nil, fmt.Errorf("XML: %w", err)
	}
	return &a, nil
}

// vocRecord parses one annotation file. Entry-level parse errors come back
// as *Problem (Malformed) naming the object.
func vocRecord(root, id, file string) (record, error) {
	a, err := parseVOCFile(file)
	if err != nil {
		return record{}, err
	}
	r := record{id: id, file: file, path: vocImagePath(root, id, strings.TrimSpace(a.Filename))}
	if a.Size.Width != "" || a.Size.Height != "" {
		w, err1 := strconv.Atoi(strings.TrimSpace(a.Size.Width))
		h, err2 := strconv.Atoi(strings.TrimSpace(a.Size.Height))
		if err1 == nil && err2 == nil {
			r.w, r.h = w, h
		}
	}
	for i, ob := range a.Objects {
		name := strings.TrimSpace(ob.Name)
		entry := fmt.Sprintf("object %d (%s)", i, name)
		bad := func(detail string) (record, error) {
			return record{}, &Problem{Kind: Malformed, File: file, Entry: entry, Detail: detail, Action: "skipped image"}
		}
		if name == "" {
			return bad("no <name>")
		}
		if ob.Box == nil {
			return bad("no <bndbox>")
		}
		var v [4]float32
		for j, s := range [4]string{ob.Box.Xmin, ob.Box.Ymin, ob.Box.Xmax, ob.Box.Ymax} {
			f, err := strconv.ParseFloat(strings.TrimSpace(s), 32)
			if err != nil {
				return bad(fmt.Sprintf("%s %q is not a number", [4]string{"xmin", "ymin", "xmax", "ymax"}[j], s))
			}
			v[j] = float32(f)
		}
		diff := strings.TrimSpace(ob.Difficult)
		r.objs = append(r.objs, object{entry: entry, name: name, difficult: diff == "1" || diff == "true",
			b: boxOf(v)})
	}
	return r, nil
}

// vocImagePath finds the image: JPEGImages/<filename> when the annotation
// names an existing file, else JPEGImages/<id> with .jpg, .jpeg or .png.
func vocImagePath(root, id, filename string) string {
	dir := filepath.Join(root, "JPEGImages")
	if filename != "" {
		p := filepath.Join(dir, filepath.Base(filename))
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	for _, ext := range []string{".jpg", ".jpeg", ".png", ".JPG", ".PNG"} {
		p := filepath.Join(dir, id+ext)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return filepath.Join(dir, id+".jpg")
}

// Len is the number of images in the split.
func (d *VOC) Len() int { return len(d.entries) }

// Classes returns the class names, Background first.
func (d *VOC) Classes() []string { return append([]string(nil), d.classes.names...) }

// NumClasses is len(Classes()).
func (d *VOC) NumClasses() int { return len(d.classes.names) }

// Report is what validation found when the split was opened.
func (d *VOC) Report() *Report { return d.report }

// Root is the dataset folder (the one holding Annotations/).
func (d *VOC) Root() string { return d.root }

// Sample decodes image i with its annotations.
func (d *VOC) Sample(i int) (Sample, error) {
	if i < 0 || i >= len(d.entries) {
		return Sample{}, fmt.Errorf("data: voc index %d out of range [0,%d)", i, len(d.entries))
	}
	e := &d.entries[i]
	return e.sample(filepath.Join(d.root, "Annotations", e.id+".xml"))
}
