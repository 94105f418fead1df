// Package symbols holds the yaegi symbol tables for the compiled packages a
// notebook cell may import beyond the Go standard library: gorgonia and its
// tensor package, gonum's mat, stat and floats, gonum/plot and its plotter,
// plotutil, vg, vgimg, vgsvg and draw packages, kernel/display, and every
// package of lib/ and plots/ in this module.
//
// The tables are generated: run `go generate ./kernel/symbols` (or
// `go generate ./...`) after changing the exported API of any of those
// packages. TestTablesUpToDate fails when the committed tables differ from
// what the generator writes. Generic functions and types are skipped by the
// generator: cells cannot reach them.
package symbols

import "reflect"

//go:generate go run ./gen -out .

// Symbols maps "import/path/name" to the package's exported symbols, as
// interp.Use expects.
var Symbols = map[string]map[string]reflect.Value{}

// MapTypes tells yaegi which interfaces to look for when interpreted values
// are passed to compiled functions taking interface{} (display.Show and
// friends), so that a cell's type with an HTML or String method is rendered
// through that method.
var MapTypes = map[reflect.Value][]reflect.Type{}

func init() {
	Symbols["."] = map[string]reflect.Value{"MapTypes": reflect.ValueOf(MapTypes)}
}
