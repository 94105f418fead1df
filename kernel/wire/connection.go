package wire

import (
	"encoding/json"
	"fmt"
	"os"
)

// ConnectionInfo is the content of a Jupyter connection file.
type ConnectionInfo struct {
	Transport       string `json:"transport"`
	IP              string `json:"ip"`
	ShellPort       int    `json:"shell_port"`
	ControlPort     int    `json:"control_port"`
	StdinPort       int    `json:"stdin_port"`
	IOPubPort       int    `json:"iopub_port"`
	HBPort          int    `json:"hb_port"`
	Key             string `json:"key"`
	SignatureScheme string `json:"signature_scheme"`
	KernelName      string `json:"kernel_name,omitempty"`
}

// ReadConnectionFile reads and checks the connection file at path.
func ReadConnectionFile(path string) (ConnectionInfo, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return ConnectionInfo{}, fmt.Errorf("wire: connection file: %w", err)
	}
	return ParseConnectionInfo(b)
}

// ParseConnectionInfo parses and checks connection file content.
func ParseConnectionInfo(b []byte) (ConnectionInfo, error) {
	var ci ConnectionInfo
	if err := json.Unmarshal(b, &ci); err != nil {
		return ConnectionInfo{}, fmt.Errorf("wire: connection file: %w", err)
	}
	if ci.Transport == "" {
		ci.Transport = "tcp"
	}
	if ci.Transport != "tcp" {
		return ConnectionInfo{}, fmt.Errorf("wire: connection file: transport %q not supported (want tcp)", ci.Transport)
	}
	if ci.IP == "" {
		return ConnectionInfo{}, fmt.Errorf("wire: connection file: no ip")
	}
	if ci.SignatureScheme == "" {
		ci.SignatureScheme = "hmac-sha256"
	}
	if _, err := NewSigner(ci.SignatureScheme, ci.Key); err != nil {
		return ConnectionInfo{}, err
	}
	for _, p := range []struct {
		name string
		port int
	}{{"shell_port", ci.ShellPort}, {"control_port", ci.ControlPort}, {"stdin_port", ci.StdinPort}, {"iopub_port", ci.IOPubPort}, {"hb_port", ci.HBPort}} {
		if p.port < 0 || p.port > 65535 {
			return ConnectionInfo{}, fmt.Errorf("wire: connection file: %s %d out of range", p.name, p.port)
		}
	}
	return ci, nil
}

func (ci ConnectionInfo) endpoint(port int) string {
	return fmt.Sprintf("%s://%s:%d", ci.Transport, ci.IP, port)
}
