package cuda

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Info describes the CUDA installation Probe found.
type Info struct {
	Driver     string // CUDA version the driver supports ("12.2"); "" without a driver
	DriverPath string // the libcuda.so.1 that was loaded
	CUBLAS     string // cuBLAS version ("11.11.3"); "" when not found
	CUBLASPath string // the libcublas that was loaded
	Devices    []DeviceInfo
}

// DeviceInfo describes one GPU.
type DeviceInfo struct {
	Ordinal     int
	Name        string // "NVIDIA H200"
	Capability  string // compute capability ("9.0")
	TotalMemory int64  // bytes
}

// String is a one-line summary like "driver 12.2, cuBLAS 11.11.3,
// 1 device: cuda:0 NVIDIA H200 (sm_90, 139.8 GiB)".
func (in Info) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "driver %s, cuBLAS %s", orNone(in.Driver), orNone(in.CUBLAS))
	switch len(in.Devices) {
	case 0:
		b.WriteString(", no device")
	case 1:
		b.WriteString(", 1 device:")
	default:
		fmt.Fprintf(&b, ", %d devices:", len(in.Devices))
	}
	for i, d := range in.Devices {
		if i > 0 {
			b.WriteString(";")
		}
		fmt.Fprintf(&b, " cuda:%d %s (sm_%s, %.1f GiB)", d.Ordinal, d.Name,
			strings.ReplaceAll(d.Capability, ".", ""), float64(d.TotalMemory)/(1<<30))
	}
	return b.String()
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// Probe loads the CUDA driver and cuBLAS and lists the devices. On error
// the Info holds what was found before the failure (for example the
// driver and cuBLAS versions on a machine without a GPU) and the error
// names what is missing: ErrNoDriver, ErrNoDevice (errors.Is) or the
// failing call.
func Probe() (Info, error) {
	var in Info
	d, err := loadDriver()
	if err != nil {
		return in, err
	}
	in.DriverPath = d.path
	var v int32
	if err := d.check("cuDriverGetVersion", d.cuDriverGetVersion(&v)); err == nil {
		in.Driver = versionString(int(v))
	}
	if c, err := loadCUBLAS(); err == nil {
		in.CUBLAS, in.CUBLASPath = c.version, c.path
	}
	if _, err := initDriver(); err != nil {
		if errors.Is(err, ErrNoDevice) {
			return in, fmt.Errorf("%w; driver %s from %s", err, orNone(in.Driver), d.path)
		}
		return in, err
	}
	var n int32
	if err := d.check("cuDeviceGetCount", d.cuDeviceGetCount(&n)); err != nil {
		return in, err
	}
	for i := 0; i < int(n); i++ {
		di, err := d.deviceInfo(i)
		if err != nil {
			return in, err
		}
		in.Devices = append(in.Devices, di)
	}
	if len(in.Devices) == 0 {
		return in, fmt.Errorf("%w: the driver lists none", ErrNoDevice)
	}
	if in.CUBLAS == "" {
		_, err := loadCUBLAS()
		return in, err
	}
	return in, nil
}

// deviceInfo reads one device's name, capability and memory (the driver
// must be initialised).
func (d *driverLib) deviceInfo(ordinal int) (DeviceInfo, error) {
	di := DeviceInfo{Ordinal: ordinal}
	var dev int32
	if err := d.check("cuDeviceGet", d.cuDeviceGet(&dev, int32(ordinal))); err != nil {
		return di, err
	}
	name := make([]byte, 256)
	if err := d.check("cuDeviceGetName", d.cuDeviceGetName(&name[0], int32(len(name)), dev)); err != nil {
		return di, err
	}
	if i := strings.IndexByte(string(name), 0); i >= 0 {
		name = name[:i]
	}
	di.Name = string(name)
	var major, minor int32
	if err := d.check("cuDeviceGetAttribute", d.cuDeviceGetAttribute(&major, attrCCMajor, dev)); err != nil {
		return di, err
	}
	if err := d.check("cuDeviceGetAttribute", d.cuDeviceGetAttribute(&minor, attrCCMinor, dev)); err != nil {
		return di, err
	}
	di.Capability = fmt.Sprintf("%d.%d", major, minor)
	var total uint64
	if err := d.check("cuDeviceTotalMem", d.cuDeviceTotalMem(&total, dev)); err != nil {
		return di, err
	}
	di.TotalMemory = int64(total)
	return di, nil
}

// ParseDevice reads a device setting: "" or "cpu" gives ("cpu", 0);
// "cuda" gives ("cuda", 0); "cuda:N" gives ("cuda", N). Anything else is an
// error naming the accepted forms.
func ParseDevice(s string) (kind string, ordinal int, err error) {
	t := strings.ToLower(strings.TrimSpace(s))
	switch {
	case t == "" || t == "cpu":
		return "cpu", 0, nil
	case t == "cuda":
		return "cuda", 0, nil
	case strings.HasPrefix(t, "cuda:"):
		n, err := strconv.Atoi(t[len("cuda:"):])
		if err != nil || n < 0 {
			return "", 0, fmt.Errorf("cuda: device %q: the ordinal after \"cuda:\" must be a non-negative integer", s)
		}
		return "cuda", n, nil
	}
	return "", 0, fmt.Errorf("cuda: device %q: want \"cpu\", \"cuda\" or \"cuda:N\"", s)
}
