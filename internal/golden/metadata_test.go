package golden

import (
	"fmt"
	"testing"

	"github.com/detlab/detlab/lib/weights"
)

// fatalTB turns Fatalf into a panic Metadata's caller can recover.
type fatalTB struct{ testing.TB }

func (fatalTB) Helper() {}
func (fatalTB) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf(format, args...))
}

func TestMetadata(t *testing.T) {
	cases := []struct {
		name, key string
		meta      map[string]string
		want      int
		fatal     bool
	}{
		{"decodes", "config", map[string]string{"config": `{"n": 3}`}, 3, false},
		{"absent key", "config", map[string]string{"other": `{}`}, 0, true},
		{"bad JSON", "config", map[string]string{"config": `{"n":`}, 0, true},
	}
	for _, c := range cases {
		var v struct {
			N int `json:"n"`
		}
		msg := func() (msg any) {
			defer func() { msg = recover() }()
			Metadata(fatalTB{t}, &weights.File{Metadata: c.meta}, c.key, &v)
			return nil
		}()
		if (msg != nil) != c.fatal || v.N != c.want {
			t.Errorf("%s: fatal %v (%v), n = %d; want fatal %v, n = %d", c.name, msg != nil, msg, v.N, c.fatal, c.want)
		}
	}
}
