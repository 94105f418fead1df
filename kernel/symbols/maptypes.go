package symbols

import (
	"fmt"
	"reflect"

	"github.com/detlab/detlab/kernel/display"
)

// richInterfaces are the interfaces an interpreted value passed to a
// display function is wrapped in, first match wins, so that its methods
// reach display.Bundle.
var richInterfaces = []reflect.Type{
	reflect.TypeOf((*display.HTMLer)(nil)).Elem(),
	reflect.TypeOf((*display.Markdowner)(nil)).Elem(),
	reflect.TypeOf((*display.PNGer)(nil)).Elem(),
	reflect.TypeOf((*display.SVGer)(nil)).Elem(),
	reflect.TypeOf((*display.JSONer)(nil)).Elem(),
	reflect.TypeOf((*error)(nil)).Elem(),
	reflect.TypeOf((*fmt.Stringer)(nil)).Elem(),
}

func init() {
	for _, f := range []interface{}{display.Show, display.ShowID, display.Update, display.Bundle} {
		MapTypes[reflect.ValueOf(f)] = richInterfaces
	}
}
