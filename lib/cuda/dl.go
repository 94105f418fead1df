//go:build linux && (amd64 || arm64)

package cuda

import (
	"fmt"
	"strings"

	"github.com/ebitengine/purego"

	"github.com/detlab/detlab/lib/internal/dl"
)

// dlopenFirst opens the first loadable candidate (with its companion
// library first, when it has one) and returns its handle and path, or an
// error listing every attempt.
func dlopenFirst(cands []string) (uintptr, string, error) {
	h, path, errs := dl.OpenFirst(cands, purego.RTLD_NOW|purego.RTLD_GLOBAL, func(c string) {
		if comp := companion(c); comp != "" {
			// Best effort: a failure shows up when c itself fails.
			_, _ = purego.Dlopen(comp, purego.RTLD_NOW|purego.RTLD_GLOBAL)
		}
	})
	if h != 0 {
		return h, path, nil
	}
	if len(errs) > 4 {
		errs = append(errs[:4], fmt.Sprintf("and %d more", len(errs)-4))
	}
	return 0, "", fmt.Errorf("tried %s", strings.Join(errs, "; "))
}

// bind looks up each symbol of lib and stores it in the matching function
// pointer; optional symbols may be missing (their pointer stays nil).
func bind(h uintptr, syms []symbol) (err error) {
	defer func() {
		// purego panics when a Go signature cannot be bound.
		if r := recover(); r != nil {
			err = fmt.Errorf("binding: %v", r)
		}
	}()
	for _, s := range syms {
		if _, err := purego.Dlsym(h, s.name); err != nil {
			if s.optional {
				continue
			}
			return fmt.Errorf("missing symbol %s", s.name)
		}
		purego.RegisterLibFunc(s.fn, h, s.name)
	}
	return nil
}
