//go:build (linux || darwin || freebsd) && (amd64 || arm64)

package dl

import (
	"strings"
	"testing"

	"github.com/ebitengine/purego"
)

// TestOpenFirstNamesEveryAttempt checks that a failed search returns no
// handle and one reason per name, each naming its library, and calls
// before for each, in order.
func TestOpenFirstNamesEveryAttempt(t *testing.T) {
	names := []string{"/nonexistent/libdetlab-a.so.1", "libdetlab-no-such.so.1"}
	var tried []string
	for range 20 { // the empty-reason failure was intermittent
		tried = tried[:0]
		h, name, reasons := OpenFirst(names, purego.RTLD_NOW|purego.RTLD_LOCAL, func(n string) { tried = append(tried, n) })
		if h != 0 || name != "" {
			t.Fatalf("opened %q", name)
		}
		if len(reasons) != len(names) || strings.Join(tried, ",") != strings.Join(names, ",") {
			t.Fatalf("reasons %q after trying %q, want one per name of %q", reasons, tried, names)
		}
		for i, r := range reasons {
			if !strings.Contains(r, names[i]) {
				t.Fatalf("reason %q does not name %s", r, names[i])
			}
		}
	}
}
