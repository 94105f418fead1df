package weights

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"os"
	"sort"
	"strings"
)

// ReadPthFile reads a file written by torch.save: the zip format of PyTorch
// 1.6 and later, or the older "legacy" stream format. The file must hold a
// state dict (a dict of name -> tensor, as model.state_dict() returns) or a
// checkpoint dict that wraps one under "state_dict", "model",
// "model_state_dict" or "model_state". Non-tensor values of the state dict
// are skipped. Tensors are materialised in row-major order whatever their
// strides; floating-point tensors of every width are returned as float32
// (DType keeps the stored type), integer and bool tensors as int64.
//
// Nothing in the file is executed: the pickle is interpreted by a small
// reader that knows the handful of torch functions a state dict uses.
func ReadPthFile(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("weights: %w", err)
	}
	f, err := ParsePth(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// ReadPth reads torch.save data from r (see ReadPthFile).
func ReadPth(r io.Reader) (*File, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("weights: %w", err)
	}
	return ParsePth(b)
}

// ReadFile reads a weights file of either format, recognised by its content:
// a torch.save file (zip or legacy) or safetensors.
func ReadFile(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("weights: %w", err)
	}
	var f *File
	if isPth(b) {
		f, err = ParsePth(b)
	} else {
		f, err = ParseSafetensors(b)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// legacyMagic is the first pickle of a legacy torch.save stream:
// PROTO 2, LONG1 of 10 bytes holding 0x1950a86a20f9469cfc6c.
var legacyMagic = []byte{0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19}

func isPth(b []byte) bool {
	return bytes.HasPrefix(b, []byte("PK\x03\x04")) || bytes.HasPrefix(b, legacyMagic)
}

// ParsePth decodes torch.save bytes (see ReadPthFile).
func ParsePth(b []byte) (f *File, err error) {
	// The reader checks every length and type it reads; this recover is a
	// last guard so that a case it missed becomes an error, not a crash.
	defer func() {
		if r := recover(); r != nil {
			f, err = nil, fmt.Errorf("%w: pth: malformed data (%v)", ErrFormat, r)
		}
	}()
	r := &pthReader{budget: 2*int64(len(b)) + 1<<24}
	var root any
	switch {
	case bytes.HasPrefix(b, []byte("PK\x03\x04")):
		root, err = r.loadZip(b)
		if err == nil {
			err = r.fillZipStorages()
		}
	case bytes.HasPrefix(b, legacyMagic):
		root, err = r.loadLegacy(b)
	default:
		n := min(len(b), 4)
		return nil, fmt.Errorf("%w: pth: not a torch.save file (starts with %q, want a zip archive or the legacy magic number)", ErrFormat, b[:n])
	}
	if err != nil {
		return nil, err
	}
	return r.stateDict(root)
}

// storage is a torch storage: a flat typed array identified by a key.
type storage struct {
	dt    DType
	elem  int
	key   string
	numel int64
	data  []byte // little-endian elements once loaded
	root  *storage
	off   int64 // element offset into root for legacy views
}

func (s *storage) bytes() []byte {
	if s.root != nil {
		rb := s.root.bytes()
		lo, hi := s.off*int64(s.elem), (s.off+s.numel)*int64(s.elem)
		if rb == nil || lo < 0 || hi > int64(len(rb)) {
			return nil
		}
		return rb[lo:hi]
	}
	return s.data
}

// torchTensor is a tensor as _rebuild_tensor_v2 describes it: a view into a
// storage.
type torchTensor struct {
	st     *storage
	offset int64
	size   []int64
	stride []int64
}

type pthReader struct {
	zr       *zip.Reader
	zrSize   int64
	prefix   string
	storages map[string]*storage
	order    []*storage
	budget   int64 // elements that may still be materialised
	format   string
}

var storageTypes = map[string]struct {
	dt   DType
	elem int
}{
	"FloatStorage":    {F32, 4},
	"DoubleStorage":   {F64, 8},
	"HalfStorage":     {F16, 2},
	"BFloat16Storage": {BF16, 2},
	"LongStorage":     {I64, 8},
	"IntStorage":      {I32, 4},
	"ShortStorage":    {I16, 2},
	"CharStorage":     {I8, 1},
	"ByteStorage":     {U8, 1},
	"BoolStorage":     {BOOL, 1},
	"UntypedStorage":  {U8, 1},
}

func asInt(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case bool:
		if x {
			return 1, true
		}
		return 0, true
	}
	return 0, false
}

// storageFromID resolves a persistent id ('storage', type, key, location,
// numel[, view]).
func (r *pthReader) storageFromID(id any, legacy bool) (any, error) {
	t, ok := id.(pyTuple)
	if !ok || len(t) < 5 {
		return nil, fmt.Errorf("%w: pth: persistent id %v is not a storage tuple", ErrFormat, describe(id))
	}
	if s, _ := t[0].(string); s != "storage" {
		if s == "module" && legacy && len(t) >= 2 {
			return t[1], nil
		}
		return nil, fmt.Errorf("%w: pth: persistent id of kind %v, want \"storage\"", ErrFormat, describe(t[0]))
	}
	g, ok := t[1].(pyGlobal)
	if !ok {
		return nil, fmt.Errorf("%w: pth: storage type %v is not a class", ErrFormat, describe(t[1]))
	}
	st, ok := storageTypes[g.name]
	if !ok || (g.module != "torch" && g.module != "torch.storage") {
		return nil, fmt.Errorf("%w: pth: unsupported storage type %s", ErrFormat, g)
	}
	key, ok1 := t[2].(string)
	numel, ok2 := asInt(t[4])
	if !ok1 || !ok2 || numel < 0 {
		return nil, fmt.Errorf("%w: pth: bad storage id %v", ErrFormat, describe(id))
	}
	if numel > math.MaxInt32*8 {
		return nil, fmt.Errorf("%w: pth: storage %q of %d elements is too large", ErrFormat, key, numel)
	}
	s, ok := r.storages[key]
	if !ok {
		s = &storage{dt: st.dt, elem: st.elem, key: key, numel: numel}
		r.storages[key] = s
		r.order = append(r.order, s)
	} else if s.dt != st.dt || s.numel != numel {
		return nil, fmt.Errorf("%w: pth: storage %q used as %s[%d] and %s[%d]", ErrFormat, key, s.dt, s.numel, st.dt, numel)
	}
	if legacy && len(t) >= 6 && t[5] != nil {
		view, ok := t[5].(pyTuple)
		if !ok || len(view) != 3 {
			return nil, fmt.Errorf("%w: pth: bad storage view %v", ErrFormat, describe(t[5]))
		}
		vkey, ok1 := view[0].(string)
		off, ok2 := asInt(view[1])
		vsize, ok3 := asInt(view[2])
		if !ok1 || !ok2 || !ok3 || off < 0 || vsize < 0 || off+vsize > numel {
			return nil, fmt.Errorf("%w: pth: bad storage view %v of %d elements", ErrFormat, describe(view), numel)
		}
		if v, ok := r.storages["view:"+vkey]; ok {
			return v, nil
		}
		v := &storage{dt: s.dt, elem: s.elem, key: vkey, numel: vsize, root: s, off: off}
		r.storages["view:"+vkey] = v
		return v, nil
	}
	return s, nil
}

func intTuple(v any) ([]int64, bool) {
	t, ok := v.(pyTuple)
	if !ok {
		return nil, false
	}
	out := make([]int64, len(t))
	for i, x := range t {
		n, ok := x.(int64)
		if !ok {
			return nil, false
		}
		out[i] = n
	}
	return out, true
}

// reduce implements the few callables a state dict pickle uses.
func (r *pthReader) reduce(g pyGlobal, args pyTuple) (any, error) {
	switch g.String() {
	case "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor":
		if len(args) < 4 {
			return nil, fmt.Errorf("%w: pth: %s with %d arguments", ErrFormat, g.name, len(args))
		}
		st, ok := args[0].(*storage)
		if !ok {
			return nil, fmt.Errorf("%w: pth: %s on %v, not a storage", ErrFormat, g.name, describe(args[0]))
		}
		off, ok1 := args[1].(int64)
		size, ok2 := intTuple(args[2])
		stride, ok3 := intTuple(args[3])
		if !ok1 || !ok2 || !ok3 || len(size) != len(stride) {
			return nil, fmt.Errorf("%w: pth: bad tensor geometry offset=%v size=%v stride=%v", ErrFormat, describe(args[1]), describe(args[2]), describe(args[3]))
		}
		return &torchTensor{st: st, offset: off, size: size, stride: stride}, nil
	case "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state":
		if len(args) < 1 {
			return nil, fmt.Errorf("%w: pth: %s without arguments", ErrFormat, g.name)
		}
		return args[0], nil
	case "collections.OrderedDict", "builtins.dict", "__builtin__.dict":
		d := newDict()
		if len(args) == 1 {
			if l, ok := args[0].(*pyList); ok {
				for _, it := range l.items {
					kv, ok := it.(pyTuple)
					if !ok || len(kv) != 2 {
						return nil, fmt.Errorf("%w: pth: OrderedDict item %v is not a pair", ErrFormat, describe(it))
					}
					d.set(kv[0], kv[1])
				}
			}
		}
		return d, nil
	}
	if g.module == "torch._utils" && strings.HasPrefix(g.name, "_rebuild_") {
		return nil, fmt.Errorf("%w: pth: unsupported tensor kind %s (quantized, sparse or device tensors are not read)", ErrFormat, g)
	}
	return nil, nil
}

func (r *pthReader) newUnpickler(b []byte, legacy bool) *unpickler {
	return &unpickler{
		b:              b,
		persistentLoad: func(id any) (any, error) { return r.storageFromID(id, legacy) },
		reduce:         r.reduce,
	}
}

// maxInflate bounds the decompression ratio accepted for a deflated zip
// record (deflate cannot exceed about 1032:1).
const maxInflate = 1100

func (r *pthReader) readRecord(f *zip.File, want int64) ([]byte, error) {
	size := f.UncompressedSize64
	if f.CompressedSize64 > uint64(r.zrSize) ||
		(f.Method == zip.Store && size != f.CompressedSize64) ||
		size > maxInflate*(f.CompressedSize64+1) {
		return nil, fmt.Errorf("%w: pth: record %s claims %d bytes from %d stored (corrupt directory?)", ErrFormat, f.Name, size, f.CompressedSize64)
	}
	if want >= 0 && size != uint64(want) {
		return nil, fmt.Errorf("%w: pth: record %s holds %d bytes, the pickle expects %d", ErrFormat, f.Name, size, want)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("%w: pth: record %s: %v", ErrFormat, f.Name, err)
	}
	defer rc.Close()
	buf := make([]byte, size)
	if _, err := io.ReadFull(rc, buf); err != nil {
		return nil, fmt.Errorf("%w: pth: record %s: %v (truncated?)", ErrFormat, f.Name, err)
	}
	// Reading to EOF makes archive/zip verify the CRC-32.
	var one [1]byte
	n, err := rc.Read(one[:])
	switch {
	case n > 0:
		err = errors.New("more data than its size says")
	case err == io.EOF:
		err = nil
	case err == nil:
		err = errors.New("no end of data after its size")
	}
	if err != nil {
		return nil, fmt.Errorf("%w: pth: record %s: %v", ErrFormat, f.Name, err)
	}
	return buf, nil
}

func (r *pthReader) loadZip(b []byte) (any, error) {
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return nil, fmt.Errorf("%w: pth: zip: %v (truncated or corrupt file?)", ErrFormat, err)
	}
	r.zr, r.zrSize = zr, int64(len(b))
	r.storages = map[string]*storage{}
	r.format = "pth"
	var pkl *zip.File
	for _, f := range zr.File {
		base := f.Name[strings.LastIndexByte(f.Name, '/')+1:]
		switch base {
		case "data.pkl":
			if pkl == nil && strings.Count(f.Name, "/") <= 1 {
				pkl = f
				r.prefix = f.Name[:len(f.Name)-len("data.pkl")]
			}
		case "constants.pkl":
			return nil, fmt.Errorf("%w: pth: a TorchScript archive, not a state dict (torch.jit.save); save model.state_dict() with torch.save", ErrFormat)
		}
	}
	if pkl == nil {
		return nil, fmt.Errorf("%w: pth: zip archive without data.pkl: not a torch.save file", ErrFormat)
	}
	for _, f := range zr.File {
		if f.Name == r.prefix+"byteorder" {
			bo, err := r.readRecord(f, -1)
			if err != nil {
				return nil, err
			}
			if s := strings.TrimSpace(string(bo)); s != "little" {
				return nil, fmt.Errorf("%w: pth: byte order %q is not supported", ErrFormat, s)
			}
		}
	}
	p, err := r.readRecord(pkl, -1)
	if err != nil {
		return nil, err
	}
	return r.newUnpickler(p, false).load()
}

func (r *pthReader) fillZipStorages() error {
	records := make(map[string]*zip.File, len(r.zr.File))
	for _, f := range r.zr.File {
		records[f.Name] = f
	}
	for _, s := range r.order {
		f, ok := records[r.prefix+"data/"+s.key]
		if !ok {
			return fmt.Errorf("%w: pth: storage %q has no record %sdata/%s in the archive", ErrFormat, s.key, r.prefix, s.key)
		}
		data, err := r.readRecord(f, s.numel*int64(s.elem))
		if err != nil {
			return err
		}
		s.data = data
	}
	return nil
}

func (r *pthReader) loadLegacy(b []byte) (any, error) {
	r.storages = map[string]*storage{}
	r.format = "pth-legacy"
	pos := 0
	next := func(what string) (any, error) {
		u := r.newUnpickler(b, true)
		u.pos = pos
		v, err := u.load()
		if err != nil {
			return nil, fmt.Errorf("legacy %s: %w", what, err)
		}
		pos = u.pos
		return v, nil
	}
	magic, err := next("magic number")
	if err != nil {
		return nil, err
	}
	if m, ok := magic.(*big.Int); !ok || m.Text(16) != "1950a86a20f9469cfc6c" {
		return nil, fmt.Errorf("%w: pth: bad legacy magic number", ErrFormat)
	}
	proto, err := next("protocol version")
	if err != nil {
		return nil, err
	}
	if p, _ := proto.(int64); p != 1001 {
		return nil, fmt.Errorf("%w: pth: legacy protocol version %v, want 1001", ErrFormat, describe(proto))
	}
	sysInfo, err := next("system info")
	if err != nil {
		return nil, err
	}
	if d, ok := sysInfo.(*pyDict); ok {
		if le, ok := d.get("little_endian"); ok && le == false {
			return nil, fmt.Errorf("%w: pth: big-endian legacy files are not supported", ErrFormat)
		}
	}
	root, err := next("data")
	if err != nil {
		return nil, err
	}
	keysV, err := next("storage keys")
	if err != nil {
		return nil, err
	}
	keys, ok := keysV.(*pyList)
	if !ok {
		return nil, fmt.Errorf("%w: pth: legacy storage keys are %v, not a list", ErrFormat, describe(keysV))
	}
	for _, kv := range keys.items {
		key, ok := kv.(string)
		if !ok {
			return nil, fmt.Errorf("%w: pth: legacy storage key %v is not a string", ErrFormat, describe(kv))
		}
		s, ok := r.storages[key]
		if !ok {
			return nil, fmt.Errorf("%w: pth: legacy storage %q is not used by the data", ErrFormat, key)
		}
		if len(b)-pos < 8 {
			return nil, fmt.Errorf("%w: pth: legacy storage %q: truncated size", ErrFormat, key)
		}
		n := int64(binary.LittleEndian.Uint64(b[pos:]))
		pos += 8
		if n != s.numel {
			return nil, fmt.Errorf("%w: pth: legacy storage %q holds %d elements, the pickle expects %d", ErrFormat, key, n, s.numel)
		}
		nb := n * int64(s.elem)
		if nb > int64(len(b)-pos) {
			return nil, fmt.Errorf("%w: pth: legacy storage %q: %d bytes, only %d left (truncated?)", ErrFormat, key, nb, len(b)-pos)
		}
		s.data = b[pos : pos+int(nb)]
		pos += int(nb)
	}
	for _, s := range r.order {
		if s.data == nil && s.numel > 0 {
			return nil, fmt.Errorf("%w: pth: legacy storage %q has no data (truncated?)", ErrFormat, s.key)
		}
	}
	return root, nil
}

// stateDictKeys are the keys under which checkpoints commonly wrap a state
// dict, in the order they are tried.
var stateDictKeys = []string{"state_dict", "model", "model_state_dict", "model_state"}

func hasTensors(d *pyDict) bool {
	for _, v := range d.vals {
		if _, ok := v.(*torchTensor); ok {
			return true
		}
	}
	return false
}

func (r *pthReader) stateDict(root any) (*File, error) {
	d, ok := root.(*pyDict)
	if !ok {
		if o, ok := root.(*pyObject); ok {
			return nil, fmt.Errorf("%w: pth: the file holds a pickled %s object, not a state dict; save model.state_dict() instead", ErrFormat, o.class)
		}
		return nil, fmt.Errorf("%w: pth: the file holds %v, not a state dict", ErrFormat, describe(root))
	}
	wrapped := ""
	if !hasTensors(d) {
		for _, k := range stateDictKeys {
			if v, ok := d.get(k); ok {
				if sd, ok := v.(*pyDict); ok && hasTensors(sd) {
					d, wrapped = sd, k
					break
				}
			}
		}
		if wrapped == "" && len(d.keys) > 0 {
			var ks []string
			for _, k := range d.keys {
				ks = append(ks, fmt.Sprint(describe(k)))
			}
			return nil, fmt.Errorf("%w: pth: no tensors in the file's dict (keys %s) nor under %q", ErrFormat, strings.Join(ks, ", "), stateDictKeys)
		}
	}
	f := &File{Entries: map[string]*Entry{}, Metadata: map[string]string{"format": r.format}}
	if wrapped != "" {
		f.Metadata["state_dict_key"] = wrapped
	}
	var skipped []string
	for i, k := range d.keys {
		name, ok := k.(string)
		if !ok {
			return nil, fmt.Errorf("%w: pth: state dict key %v is not a string", ErrFormat, describe(k))
		}
		t, ok := d.vals[i].(*torchTensor)
		if !ok {
			skipped = append(skipped, name)
			continue
		}
		e, err := r.materialise(name, t)
		if err != nil {
			return nil, err
		}
		f.Names = append(f.Names, name)
		f.Entries[name] = e
	}
	if len(skipped) > 0 {
		sort.Strings(skipped)
		f.Metadata["skipped"] = strings.Join(skipped, ",")
	}
	return f, nil
}

// materialise copies a strided view of a storage into a row-major entry.
func (r *pthReader) materialise(name string, t *torchTensor) (*Entry, error) {
	bad := func(why string) error {
		return fmt.Errorf("%w: pth: tensor %q (size %v, stride %v, offset %d, storage of %d): %s", ErrFormat, name, t.size, t.stride, t.offset, t.st.numel, why)
	}
	n := int64(1)
	for _, d := range t.size {
		if d < 0 {
			return nil, bad("negative size")
		}
		if d > 0 && n > math.MaxInt32/d {
			return nil, bad("too many elements")
		}
		n *= d
	}
	if n > r.budget {
		return nil, bad("more elements than the file can hold")
	}
	r.budget -= n
	shape := make([]int, len(t.size))
	for i, d := range t.size {
		shape[i] = int(d)
	}
	e := &Entry{Name: name, DType: t.st.dt, Shape: shape}
	isFloat := t.st.dt == F32 || t.st.dt == F64 || t.st.dt == F16 || t.st.dt == BF16
	if isFloat {
		e.F32Data = make([]float32, n)
	} else {
		e.I64Data = make([]int64, n)
	}
	if n == 0 {
		return e, nil
	}
	if t.offset < 0 {
		return nil, bad("negative offset")
	}
	last := t.offset
	for i, d := range t.size {
		if t.stride[i] < 0 || t.stride[i] > math.MaxInt32 {
			return nil, bad("bad stride")
		}
		last += (d - 1) * t.stride[i]
	}
	if last >= t.st.numel {
		return nil, bad("view reaches past the end of its storage")
	}
	data := t.st.bytes()
	if int64(len(data)) < t.st.numel*int64(t.st.elem) {
		return nil, bad("storage data missing")
	}
	// Walk the multi-index in row-major order.
	idx := make([]int64, len(t.size))
	off := t.offset
	el := int64(t.st.elem)
	for k := int64(0); k < n; k++ {
		p := data[off*el:]
		switch t.st.dt {
		case F32:
			e.F32Data[k] = math.Float32frombits(binary.LittleEndian.Uint32(p))
		case F64:
			e.F32Data[k] = float32(math.Float64frombits(binary.LittleEndian.Uint64(p)))
		case F16:
			e.F32Data[k] = HalfToFloat32(binary.LittleEndian.Uint16(p))
		case BF16:
			e.F32Data[k] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(p)) << 16)
		case I64:
			e.I64Data[k] = int64(binary.LittleEndian.Uint64(p))
		case I32:
			e.I64Data[k] = int64(int32(binary.LittleEndian.Uint32(p)))
		case I16:
			e.I64Data[k] = int64(int16(binary.LittleEndian.Uint16(p)))
		case I8:
			e.I64Data[k] = int64(int8(p[0]))
		case U8, BOOL:
			e.I64Data[k] = int64(p[0])
		}
		for d := len(idx) - 1; d >= 0; d-- {
			idx[d]++
			off += t.stride[d]
			if idx[d] < t.size[d] {
				break
			}
			off -= idx[d] * t.stride[d]
			idx[d] = 0
		}
	}
	return e, nil
}

// describe renders a decoded pickle value briefly for error messages.
func describe(v any) any {
	switch x := v.(type) {
	case nil:
		return "None"
	case string:
		if len(x) > 40 {
			x = x[:40] + "..."
		}
		return fmt.Sprintf("%q", x)
	case int64, bool, float64:
		return x
	case pyGlobal:
		return x.String()
	case pyTuple:
		return fmt.Sprintf("a %d-tuple", len(x))
	case *pyList:
		return fmt.Sprintf("a list of %d", len(x.items))
	case *pyDict:
		return fmt.Sprintf("a dict of %d", len(x.keys))
	case *pyObject:
		return "a " + x.class.String() + " object"
	case *torchTensor:
		return "a tensor"
	case *storage:
		return "a storage"
	}
	return fmt.Sprintf("a %T", v)
}
