package display

import (
	"encoding/base64"
	"image"
	"image/color"
	"strings"
	"testing"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
)

type recorder struct {
	shown   []Data
	updated []Data
	cleared []bool
}

func (r *recorder) Display(d Data)  { r.shown = append(r.shown, d) }
func (r *recorder) Update(d Data)   { r.updated = append(r.updated, d) }
func (r *recorder) Clear(wait bool) { r.cleared = append(r.cleared, wait) }

type rich struct{}

func (rich) HTML() string      { return "<b>x</b>" }
func (rich) Markdown() string  { return "**x**" }
func (rich) JSON() interface{} { return map[string]int{"x": 1} }
func (rich) String() string    { return "rich x" }

type plain struct{ A int }

func TestBundle(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 3, 2))
	img.Set(1, 1, color.White)
	p := plot.New()
	p.Title.Text = "t"
	pts := plotter.XYs{{X: 0, Y: 0}, {X: 1, Y: 1}}
	l, err := plotter.NewLine(pts)
	if err != nil {
		t.Fatal(err)
	}
	p.Add(l)
	tests := []struct {
		name  string
		v     interface{}
		ok    bool
		mimes []string
	}{
		{"nil", nil, false, nil},
		{"int", 3, false, nil},
		{"struct", plain{1}, false, nil},
		{"image", img, true, []string{"image/png", "text/plain"}},
		{"plot", p, true, []string{"image/png", "image/svg+xml", "text/plain"}},
		{"nil plot", (*plot.Plot)(nil), false, nil},
		{"rich", rich{}, true, []string{"application/json", "text/html", "text/markdown", "text/plain"}},
		{"data", Data{MIME: map[string]any{"text/plain": "x"}}, true, []string{"text/plain"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, ok := Bundle(tc.v)
			if ok != tc.ok {
				t.Fatalf("Bundle(%v) ok = %v, want %v", tc.v, ok, tc.ok)
			}
			if len(d.MIME) != len(tc.mimes) {
				t.Fatalf("Bundle(%v) MIME types %v, want %v", tc.v, keys(d.MIME), tc.mimes)
			}
			for _, m := range tc.mimes {
				if _, ok := d.MIME[m]; !ok {
					t.Errorf("Bundle(%v) lacks %s (has %v)", tc.v, m, keys(d.MIME))
				}
			}
			if s, ok := d.MIME["image/png"].(string); ok {
				b, err := base64.StdEncoding.DecodeString(s)
				if err != nil || !strings.HasPrefix(string(b), "\x89PNG") {
					t.Errorf("image/png is not base64 PNG: %v", err)
				}
			}
		})
	}
}

func keys(m map[string]any) []string {
	var k []string
	for s := range m {
		k = append(k, s)
	}
	return k
}

func TestSinkCalls(t *testing.T) {
	r := &recorder{}
	SetSink(r)
	defer SetSink(nil)
	HTML("<i>a</i>")
	id := NewID()
	ShowID(id, "0%")
	Update(id, "50%")
	Update("", "ignored")
	Clear(true)
	if len(r.shown) != 2 || r.shown[0].MIME["text/html"] != "<i>a</i>" || r.shown[1].DisplayID != id {
		t.Fatalf("shown = %+v", r.shown)
	}
	if len(r.updated) != 1 || r.updated[0].DisplayID != id || r.updated[0].MIME["text/plain"] != "50%" {
		t.Fatalf("updated = %+v", r.updated)
	}
	if len(r.cleared) != 1 || !r.cleared[0] {
		t.Fatalf("cleared = %v", r.cleared)
	}
	if _, err := Input("name? "); err == nil {
		t.Fatal("Input with a sink that cannot read succeeded")
	}
}

func TestNoSink(t *testing.T) {
	SetSink(nil)
	HTML("x") // must not panic
	Update("id", 1)
	Clear(false)
	if IsNotebook() {
		t.Fatal("IsNotebook with no sink")
	}
	if _, err := Input("x"); err == nil {
		t.Fatal("Input outside a notebook succeeded")
	}
}
