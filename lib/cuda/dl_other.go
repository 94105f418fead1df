//go:build !(linux && (amd64 || arm64))

package cuda

import "errors"

func dlopenFirst([]string) (uintptr, string, error) {
	return 0, "", errors.New("dynamic loading of CUDA libraries is only implemented on linux/amd64 and linux/arm64")
}

func bind(uintptr, []symbol) error { return errors.New("unsupported platform") }
