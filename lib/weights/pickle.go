package weights

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
)

// This file holds a small, defensive pickle virtual machine: enough of
// Python's pickle protocols 0-5 to read what torch.save writes, and nothing
// that executes code. Every length read from the stream is checked against
// the bytes that remain before anything is allocated, so a corrupt or
// hostile file costs at most about its own size in memory. gopickle's
// Unpickler allocates lengths read from the stream before checking them,
// which is why it is not used here.

// pyTuple, pyList and pyDict are the Python containers a state dict uses.
type pyTuple []any

type pyList struct{ items []any }

type pyDict struct {
	keys []any
	vals []any
	idx  map[string]int // index of string keys, for SETITEM replacing a key
}

func newDict() *pyDict { return &pyDict{idx: map[string]int{}} }

func (d *pyDict) set(k, v any) {
	if s, ok := k.(string); ok {
		if i, ok := d.idx[s]; ok {
			d.vals[i] = v
			return
		}
		d.idx[s] = len(d.keys)
	}
	d.keys = append(d.keys, k)
	d.vals = append(d.vals, v)
}

func (d *pyDict) get(k string) (any, bool) {
	i, ok := d.idx[k]
	if !ok {
		return nil, false
	}
	return d.vals[i], true
}

// pyGlobal is a class or function named by GLOBAL / STACK_GLOBAL.
type pyGlobal struct{ module, name string }

func (g pyGlobal) String() string { return g.module + "." + g.name }

// pyObject is an instance of a class the reader does not interpret (an
// optimizer's state, argparse.Namespace ...): kept, never executed.
type pyObject struct {
	class pyGlobal
	args  any
	state any
}

// pyMark is the MARK sentinel on the stack.
type pyMark struct{}

// unpickler runs one pickle from b starting at pos.
type unpickler struct {
	b     []byte
	pos   int
	stack []any
	memo  map[int64]any
	// persistentLoad resolves PERSID/BINPERSID ids (torch storages).
	persistentLoad func(id any) (any, error)
	// reduce builds objects for REDUCE; it gets the callable and its args.
	reduce func(fn pyGlobal, args pyTuple) (any, error)
}

func perr(format string, args ...any) error {
	return fmt.Errorf("%w: pickle: %s", ErrFormat, fmt.Sprintf(format, args...))
}

func (u *unpickler) need(n uint64) ([]byte, error) {
	if n > uint64(len(u.b)-u.pos) {
		return nil, perr("need %d bytes at offset %d, only %d left (truncated?)", n, u.pos, len(u.b)-u.pos)
	}
	s := u.b[u.pos : u.pos+int(n)]
	u.pos += int(n)
	return s, nil
}

func (u *unpickler) line() (string, error) {
	i := bytes.IndexByte(u.b[u.pos:], '\n')
	if i < 0 {
		return "", perr("unterminated line at offset %d", u.pos)
	}
	s := string(u.b[u.pos : u.pos+i])
	u.pos += i + 1
	return s, nil
}

func (u *unpickler) push(v any) { u.stack = append(u.stack, v) }

func (u *unpickler) pop() (any, error) {
	if len(u.stack) == 0 {
		return nil, perr("stack underflow at offset %d", u.pos)
	}
	v := u.stack[len(u.stack)-1]
	u.stack = u.stack[:len(u.stack)-1]
	if _, ok := v.(pyMark); ok {
		return nil, perr("unexpected MARK at offset %d", u.pos)
	}
	return v, nil
}

func (u *unpickler) top() (any, error) {
	if len(u.stack) == 0 {
		return nil, perr("stack underflow at offset %d", u.pos)
	}
	return u.stack[len(u.stack)-1], nil
}

// popMark pops everything above the topmost MARK, and the MARK.
func (u *unpickler) popMark() ([]any, error) {
	for i := len(u.stack) - 1; i >= 0; i-- {
		if _, ok := u.stack[i].(pyMark); ok {
			items := append([]any(nil), u.stack[i+1:]...)
			u.stack = u.stack[:i]
			return items, nil
		}
	}
	return nil, perr("no MARK on the stack at offset %d", u.pos)
}

func (u *unpickler) uint(n int) (uint64, error) {
	s, err := u.need(uint64(n))
	if err != nil {
		return 0, err
	}
	var v uint64
	for i := n - 1; i >= 0; i-- {
		v = v<<8 | uint64(s[i])
	}
	return v, nil
}

// decodeLong decodes a little-endian two's-complement integer (LONG1/LONG4).
func decodeLong(s []byte) any {
	if len(s) == 0 {
		return int64(0)
	}
	if len(s) <= 8 {
		var v uint64
		for i := len(s) - 1; i >= 0; i-- {
			v = v<<8 | uint64(s[i])
		}
		shift := uint(64 - 8*len(s))
		return int64(v<<shift) >> shift
	}
	be := make([]byte, len(s))
	for i := range s {
		be[len(s)-1-i] = s[i]
	}
	n := new(big.Int).SetBytes(be)
	if s[len(s)-1]&0x80 != 0 {
		n.Sub(n, new(big.Int).Lsh(big.NewInt(1), uint(8*len(s))))
	}
	return n
}

func (u *unpickler) memoGet(i int64) error {
	v, ok := u.memo[i]
	if !ok {
		return perr("memo key %d not found at offset %d", i, u.pos)
	}
	u.push(v)
	return nil
}

func (u *unpickler) memoPut(i int64) error {
	v, err := u.top()
	if err != nil {
		return err
	}
	if _, ok := v.(pyMark); ok {
		return perr("cannot memoize a MARK at offset %d", u.pos)
	}
	u.memo[i] = v
	return nil
}

func (u *unpickler) pushBytes(lenBytes int, asString bool) error {
	n, err := u.uint(lenBytes)
	if err != nil {
		return err
	}
	s, err := u.need(n)
	if err != nil {
		return err
	}
	if asString {
		u.push(string(s))
	} else {
		u.push(append([]byte(nil), s...))
	}
	return nil
}

// load runs the pickle VM until STOP and returns the result.
func (u *unpickler) load() (any, error) {
	if u.memo == nil {
		u.memo = map[int64]any{}
	}
	for {
		if u.pos >= len(u.b) {
			return nil, perr("no STOP before end of data at offset %d (truncated?)", u.pos)
		}
		op := u.b[u.pos]
		u.pos++
		if err := u.step(op); err != nil {
			if err == errStop {
				v, err := u.pop()
				if err != nil {
					return nil, err
				}
				return v, nil
			}
			return nil, err
		}
	}
}

var errStop = fmt.Errorf("STOP")

func (u *unpickler) step(op byte) error {
	switch op {
	case 0x80: // PROTO
		p, err := u.uint(1)
		if err != nil {
			return err
		}
		if p > 5 {
			return perr("unsupported protocol %d", p)
		}
	case 0x95: // FRAME: the frame size is advisory here
		_, err := u.uint(8)
		return err
	case '.': // STOP
		return errStop
	case '(': // MARK
		u.push(pyMark{})
	case '0': // POP
		if len(u.stack) == 0 {
			return perr("POP on empty stack")
		}
		u.stack = u.stack[:len(u.stack)-1]
	case '1': // POP_MARK
		_, err := u.popMark()
		return err
	case '2': // DUP
		v, err := u.top()
		if err != nil {
			return err
		}
		u.push(v)
	case 'N':
		u.push(nil)
	case 0x88:
		u.push(true)
	case 0x89:
		u.push(false)
	case 'J': // BININT
		v, err := u.uint(4)
		if err != nil {
			return err
		}
		u.push(int64(int32(uint32(v))))
	case 'K': // BININT1
		v, err := u.uint(1)
		if err != nil {
			return err
		}
		u.push(int64(v))
	case 'M': // BININT2
		v, err := u.uint(2)
		if err != nil {
			return err
		}
		u.push(int64(v))
	case 0x8a, 0x8b: // LONG1, LONG4
		w := 1
		if op == 0x8b {
			w = 4
		}
		n, err := u.uint(w)
		if err != nil {
			return err
		}
		s, err := u.need(n)
		if err != nil {
			return err
		}
		u.push(decodeLong(s))
	case 'I', 'L': // INT, LONG (text)
		s, err := u.line()
		if err != nil {
			return err
		}
		s = strings.TrimSuffix(s, "L")
		switch s {
		case "00":
			u.push(false)
			return nil
		case "01":
			u.push(true)
			return nil
		}
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return perr("bad integer %q", s)
		}
		u.push(v)
	case 'G': // BINFLOAT (big-endian)
		s, err := u.need(8)
		if err != nil {
			return err
		}
		u.push(math.Float64frombits(binary.BigEndian.Uint64(s)))
	case 'F': // FLOAT (text)
		s, err := u.line()
		if err != nil {
			return err
		}
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return perr("bad float %q", s)
		}
		u.push(v)
	case 'X': // BINUNICODE
		return u.pushBytes(4, true)
	case 0x8c: // SHORT_BINUNICODE
		return u.pushBytes(1, true)
	case 0x8d: // BINUNICODE8
		return u.pushBytes(8, true)
	case 'T': // BINSTRING
		return u.pushBytes(4, true)
	case 'U': // SHORT_BINSTRING
		return u.pushBytes(1, true)
	case 'B': // BINBYTES
		return u.pushBytes(4, false)
	case 'C': // SHORT_BINBYTES
		return u.pushBytes(1, false)
	case 0x8e: // BINBYTES8
		return u.pushBytes(8, false)
	case 0x96: // BYTEARRAY8
		return u.pushBytes(8, false)
	case 'V', 'S': // UNICODE, STRING (text)
		s, err := u.line()
		if err != nil {
			return err
		}
		if op == 'S' && len(s) >= 2 && (s[0] == '\'' || s[0] == '"') {
			s = s[1 : len(s)-1]
		}
		u.push(s)
	case ')':
		u.push(pyTuple{})
	case 't':
		items, err := u.popMark()
		if err != nil {
			return err
		}
		u.push(pyTuple(items))
	case 0x85, 0x86, 0x87: // TUPLE1..3
		n := int(op-0x85) + 1
		items := make(pyTuple, n)
		for i := n - 1; i >= 0; i-- {
			v, err := u.pop()
			if err != nil {
				return err
			}
			items[i] = v
		}
		u.push(items)
	case ']':
		u.push(&pyList{})
	case 'l':
		items, err := u.popMark()
		if err != nil {
			return err
		}
		u.push(&pyList{items: items})
	case '}':
		u.push(newDict())
	case 'd':
		items, err := u.popMark()
		if err != nil {
			return err
		}
		d := newDict()
		if err := setItems(d, items); err != nil {
			return err
		}
		u.push(d)
	case 0x8f: // EMPTY_SET
		u.push(&pyList{})
	case 0x91: // FROZENSET
		items, err := u.popMark()
		if err != nil {
			return err
		}
		u.push(&pyList{items: items})
	case 0x90: // ADDITEMS
		items, err := u.popMark()
		if err != nil {
			return err
		}
		v, err := u.top()
		if err != nil {
			return err
		}
		l, ok := v.(*pyList)
		if !ok {
			return perr("ADDITEMS to %T", v)
		}
		l.items = append(l.items, items...)
	case 'a': // APPEND
		v, err := u.pop()
		if err != nil {
			return err
		}
		t, err := u.top()
		if err != nil {
			return err
		}
		l, ok := t.(*pyList)
		if !ok {
			return perr("APPEND to %T", t)
		}
		l.items = append(l.items, v)
	case 'e': // APPENDS
		items, err := u.popMark()
		if err != nil {
			return err
		}
		t, err := u.top()
		if err != nil {
			return err
		}
		l, ok := t.(*pyList)
		if !ok {
			return perr("APPENDS to %T", t)
		}
		l.items = append(l.items, items...)
	case 's': // SETITEM
		v, err := u.pop()
		if err != nil {
			return err
		}
		k, err := u.pop()
		if err != nil {
			return err
		}
		t, err := u.top()
		if err != nil {
			return err
		}
		d, ok := t.(*pyDict)
		if !ok {
			return perr("SETITEM on %T", t)
		}
		d.set(k, v)
	case 'u': // SETITEMS
		items, err := u.popMark()
		if err != nil {
			return err
		}
		t, err := u.top()
		if err != nil {
			return err
		}
		d, ok := t.(*pyDict)
		if !ok {
			return perr("SETITEMS on %T", t)
		}
		return setItems(d, items)
	case 'g': // GET
		s, err := u.line()
		if err != nil {
			return err
		}
		i, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return perr("bad memo index %q", s)
		}
		return u.memoGet(i)
	case 'h': // BINGET
		i, err := u.uint(1)
		if err != nil {
			return err
		}
		return u.memoGet(int64(i))
	case 'j': // LONG_BINGET
		i, err := u.uint(4)
		if err != nil {
			return err
		}
		return u.memoGet(int64(i))
	case 'p': // PUT
		s, err := u.line()
		if err != nil {
			return err
		}
		i, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return perr("bad memo index %q", s)
		}
		return u.memoPut(i)
	case 'q': // BINPUT
		i, err := u.uint(1)
		if err != nil {
			return err
		}
		return u.memoPut(int64(i))
	case 'r': // LONG_BINPUT
		i, err := u.uint(4)
		if err != nil {
			return err
		}
		return u.memoPut(int64(i))
	case 0x94: // MEMOIZE
		return u.memoPut(int64(len(u.memo)))
	case 'c': // GLOBAL
		mod, err := u.line()
		if err != nil {
			return err
		}
		name, err := u.line()
		if err != nil {
			return err
		}
		u.push(pyGlobal{mod, name})
	case 0x93: // STACK_GLOBAL
		name, err := u.pop()
		if err != nil {
			return err
		}
		mod, err := u.pop()
		if err != nil {
			return err
		}
		ms, ok1 := mod.(string)
		ns, ok2 := name.(string)
		if !ok1 || !ok2 {
			return perr("STACK_GLOBAL with %T, %T", mod, name)
		}
		u.push(pyGlobal{ms, ns})
	case 'R': // REDUCE
		args, err := u.pop()
		if err != nil {
			return err
		}
		fn, err := u.pop()
		if err != nil {
			return err
		}
		return u.callReduce(fn, args)
	case 0x81: // NEWOBJ
		args, err := u.pop()
		if err != nil {
			return err
		}
		cls, err := u.pop()
		if err != nil {
			return err
		}
		return u.callReduce(cls, args)
	case 0x92: // NEWOBJ_EX
		if _, err := u.pop(); err != nil { // kwargs
			return err
		}
		args, err := u.pop()
		if err != nil {
			return err
		}
		cls, err := u.pop()
		if err != nil {
			return err
		}
		return u.callReduce(cls, args)
	case 'b': // BUILD
		state, err := u.pop()
		if err != nil {
			return err
		}
		t, err := u.top()
		if err != nil {
			return err
		}
		if o, ok := t.(*pyObject); ok {
			o.state = state
		}
		// BUILD on a dict sets attributes (OrderedDict._metadata): ignored.
	case 'Q': // BINPERSID
		id, err := u.pop()
		if err != nil {
			return err
		}
		return u.persid(id)
	case 'P': // PERSID
		s, err := u.line()
		if err != nil {
			return err
		}
		return u.persid(s)
	case 0x97: // NEXT_BUFFER
		return perr("out-of-band buffers are not supported")
	case 0x98: // READONLY_BUFFER
		return nil
	default:
		return perr("unsupported opcode 0x%02x at offset %d", op, u.pos-1)
	}
	return nil
}

func setItems(d *pyDict, items []any) error {
	if len(items)%2 != 0 {
		return perr("odd number of items (%d) for a dict", len(items))
	}
	for i := 0; i < len(items); i += 2 {
		d.set(items[i], items[i+1])
	}
	return nil
}

func (u *unpickler) persid(id any) error {
	if u.persistentLoad == nil {
		return perr("persistent id without a loader")
	}
	v, err := u.persistentLoad(id)
	if err != nil {
		return err
	}
	u.push(v)
	return nil
}

func (u *unpickler) callReduce(fn, args any) error {
	g, ok := fn.(pyGlobal)
	if !ok {
		return perr("REDUCE on %T, not a class or function", fn)
	}
	t, ok := args.(pyTuple)
	if !ok {
		return perr("REDUCE %s with %T arguments, not a tuple", g, args)
	}
	var v any
	var err error
	if u.reduce != nil {
		v, err = u.reduce(g, t)
		if err != nil {
			return err
		}
	}
	if v == nil {
		v = &pyObject{class: g, args: t}
	}
	u.push(v)
	return nil
}
