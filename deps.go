//go:build tools

package detlab

import (
	_ "github.com/go-zeromq/zmq4"
	_ "github.com/nlpodyssey/gopickle/pickle"
	_ "github.com/traefik/yaegi/interp"
	_ "go4.org/unsafe/assume-no-moving-gc"
	_ "gonum.org/v1/gonum/mat"
	_ "gonum.org/v1/plot"
	_ "gorgonia.org/gorgonia"
	_ "gorgonia.org/tensor"
)
