package session

import (
	"context"
	"errors"
	"strings"

	"github.com/detlab/detlab/kernel/display"
)

// usesCellVar reports whether err says a name the cell's statements define
// is undefined.
func usesCellVar(err error, c *cell) bool {
	var ee *ExecError
	if !errors.As(err, &ee) || ee.Name != "CompileError" || !strings.HasPrefix(ee.Value, "undefined: ") {
		return false
	}
	name := strings.TrimSpace(strings.TrimPrefix(ee.Value, "undefined: "))
	for _, v := range c.defined {
		if v.name == name {
			return true
		}
	}
	return false
}

// runOrdered runs a cell group by group in source order: each run of
// consecutive declarations, then each run of consecutive statements. It
// is the fallback for cells whose declarations use variables the cell
// itself defines.
func (s *Session) runOrdered(ctx context.Context, c *cell) (*display.Data, error) {
	var res *display.Data
	i := 0
	for i < len(c.units) {
		kind := c.units[i].kind
		if kind == unitImport {
			i++
			continue
		}
		j := i
		var ranges [][2]int
		for j < len(c.units) && (c.units[j].kind == kind || c.units[j].kind == unitImport) {
			if c.units[j].kind == kind {
				ranges = append(ranges, [2]int{c.units[j].start, c.units[j].end})
			}
			j++
		}
		from, to := ranges[0][0], ranges[len(ranges)-1][1]
		part := &cell{src: c.src, finalStart: -1}
		if kind == unitDecl {
			part.declSrc = mask(c.src, ranges)
			for _, d := range c.decls {
				if d.off >= from && d.off < to {
					part.decls = append(part.decls, d)
				}
			}
			if err := s.declare(ctx, part); err != nil {
				return nil, err
			}
		} else {
			part.stmtSrc = mask(c.src, ranges)
			for _, v := range c.defined {
				if v.off >= from && v.off < to {
					part.defined = append(part.defined, v)
				}
			}
			for k, sp := range c.spans {
				if sp.start >= from && sp.start < to {
					part.spans = append(part.spans, sp)
					part.stmts = append(part.stmts, c.stmts[k])
				}
			}
			if c.finalStart >= from && c.finalStart < to {
				part.finalStart, part.finalEnd, part.finalCall = c.finalStart, c.finalEnd, c.finalCall
			}
			d, err := s.statements(ctx, part)
			if err != nil {
				return nil, err
			}
			res = d
		}
		i = j
	}
	return res, nil
}
