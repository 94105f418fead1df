package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

const testKey = "a0436f6c-1916-498b-8eb9-e81ab9368e84"

func frames(ids []string, sig string, parts ...string) [][]byte {
	var fs [][]byte
	for _, id := range ids {
		fs = append(fs, []byte(id))
	}
	fs = append(fs, []byte(Delimiter), []byte(sig))
	for _, p := range parts {
		fs = append(fs, []byte(p))
	}
	return fs
}

func signed(s Signer, ids []string, parts ...string) [][]byte {
	var bs [][]byte
	for _, p := range parts[:4] {
		bs = append(bs, []byte(p))
	}
	return frames(ids, string(s.Sign(bs...)), parts...)
}

const (
	hdr    = `{"msg_id":"m1","session":"s1","username":"u","date":"2026-01-01T00:00:00Z","msg_type":"execute_request","version":"5.3"}`
	parent = `{}`
	meta   = `{}`
	body   = `{"code":"1+1","silent":false}`
)

func TestSignKnownVector(t *testing.T) {
	// Python: hmac.new(b"key", b"abcd", hashlib.sha256).hexdigest()
	const want = "2a31ec0ee8d878c9eece9fb0df79b3b90b2256240163aa5ee50d176d3d1121f8"
	s, _ := NewSigner("hmac-sha256", "key")
	if got := string(s.Sign([]byte("a"), []byte("b"), []byte("c"), []byte("d"))); got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
	if !s.Verify([]byte(want), []byte("ab"), []byte("cd")) {
		t.Fatal("Verify rejected the known signature")
	}
	if s.Verify([]byte(want[:63]+"0"), []byte("abcd")) {
		t.Fatal("Verify accepted a wrong signature")
	}
}

func TestDecode(t *testing.T) {
	s, err := NewSigner("hmac-sha256", testKey)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := NewSigner("hmac-sha256", "other-key")
	good := signed(s, []string{"id1", "id2"}, hdr, parent, meta, body, "buf")
	tampered := signed(s, nil, hdr, parent, meta, body)
	tampered[len(tampered)-1] = []byte(`{"code":"rm -rf /"}`)
	tests := []struct {
		name    string
		frames  [][]byte
		signer  Signer
		wantErr error
	}{
		{"good", good, s, nil},
		{"no identities", signed(s, nil, hdr, parent, meta, body), s, nil},
		{"wrong key", signed(other, nil, hdr, parent, meta, body), s, ErrSignature},
		{"tampered content", tampered, s, ErrSignature},
		{"missing signature", frames(nil, "", hdr, parent, meta, body), s, ErrSignature},
		{"garbage signature", frames(nil, "zz", hdr, parent, meta, body), s, ErrSignature},
		{"unsigned accepted with empty key", frames(nil, "", hdr, parent, meta, body), Signer{}, nil},
		{"no delimiter", [][]byte{[]byte(hdr)}, s, ErrNoDelimiter},
		{"short", frames(nil, "x", hdr, parent), s, ErrShort},
		{"header not json", signed(s, nil, `{"msg_id":`, parent, meta, body), s, ErrMalformed},
		{"header without type", signed(s, nil, `{"msg_id":"x"}`, parent, meta, body), s, ErrMalformed},
		{"content not json", signed(s, nil, hdr, parent, meta, `{"code":`), s, ErrMalformed},
		{"content an array", signed(s, nil, hdr, parent, meta, `[1]`), s, ErrMalformed},
		{"parent not object", signed(s, nil, hdr, `null`, meta, body), s, ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Decode(tc.frames, tc.signer)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Decode error = %v, want %v", err, tc.wantErr)
				}
				if m != nil {
					t.Fatalf("Decode returned a message with error")
				}
				return
			}
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if m.Type() != "execute_request" || m.Header.MsgID != "m1" {
				t.Fatalf("header = %+v", m.Header)
			}
			var c struct{ Code string }
			if err := m.DecodeContent(&c); err != nil || c.Code != "1+1" {
				t.Fatalf("content = %q, %v", c.Code, err)
			}
		})
	}
	m, _ := Decode(good, s)
	if len(m.Identities) != 2 || string(m.Identities[1]) != "id2" || len(m.Buffers) != 1 {
		t.Fatalf("identities %q buffers %q", m.Identities, m.Buffers)
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	s, _ := NewSigner("hmac-sha256", testKey)
	req, err := Decode(signed(s, []string{"peer"}, hdr, parent, meta, body), s)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := NewMessage("kernel-session", "execute_reply", req, map[string]any{"status": "ok", "execution_count": 1})
	if err != nil {
		t.Fatal(err)
	}
	fs := Encode(rep, s)
	if string(fs[0]) != "peer" || string(fs[1]) != Delimiter {
		t.Fatalf("frames start %q", fs[:2])
	}
	got, err := Decode(fs, s)
	if err != nil {
		t.Fatalf("Decode(Encode(reply)): %v", err)
	}
	if got.Header.MsgType != "execute_reply" || got.Header.Version != ProtocolVersion || got.Header.Session != "kernel-session" {
		t.Fatalf("header %+v", got.Header)
	}
	if !bytes.Equal(got.ParentHeader, []byte(hdr)) {
		t.Fatalf("parent header %s, want the request header unchanged", got.ParentHeader)
	}
	var c map[string]any
	if err := json.Unmarshal(got.Content, &c); err != nil || c["status"] != "ok" {
		t.Fatalf("content %s", got.Content)
	}
}

func TestVerifyUsesConstantTimeCompare(t *testing.T) {
	// Verify must go through hmac.Equal; this source check keeps a later
	// edit from replacing it with bytes.Equal or ==.
	src, err := os.ReadFile("message.go")
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(src, []byte("func (s Signer) Verify"))
	if i < 0 {
		t.Fatal("Verify not found")
	}
	fn := src[i:]
	fn = fn[:bytes.Index(fn, []byte("\n}\n"))]
	if !bytes.Contains(fn, []byte("hmac.Equal(")) || bytes.Contains(fn, []byte("bytes.Equal(")) || bytes.Contains(fn, []byte("string(")) {
		t.Fatalf("Verify does not compare with hmac.Equal only:\n%s", fn)
	}
}

func TestNewSigner(t *testing.T) {
	if _, err := NewSigner("hmac-md5", "k"); err == nil {
		t.Fatal("hmac-md5 accepted")
	}
	if _, err := NewSigner("", ""); err != nil {
		t.Fatalf("empty key: %v", err)
	}
}

func TestParseConnectionInfo(t *testing.T) {
	tests := []struct {
		name, in string
		ok       bool
	}{
		{"full", `{"transport":"tcp","ip":"127.0.0.1","shell_port":1,"control_port":2,"stdin_port":3,"iopub_port":4,"hb_port":5,"key":"k","signature_scheme":"hmac-sha256"}`, true},
		{"defaults", `{"ip":"127.0.0.1","key":""}`, true},
		{"ipc", `{"transport":"ipc","ip":"kernel"}`, false},
		{"no ip", `{"transport":"tcp"}`, false},
		{"bad scheme", `{"ip":"127.0.0.1","key":"k","signature_scheme":"hmac-md5"}`, false},
		{"bad port", `{"ip":"127.0.0.1","shell_port":70000}`, false},
		{"not json", `{`, false},
	}
	for _, tc := range tests {
		ci, err := ParseConnectionInfo([]byte(tc.in))
		if (err == nil) != tc.ok {
			t.Errorf("%s: err = %v, want ok=%v", tc.name, err, tc.ok)
		}
		if err == nil && (ci.Transport != "tcp" || ci.SignatureScheme != "hmac-sha256") {
			t.Errorf("%s: defaults not filled: %+v", tc.name, ci)
		}
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "c.json")
	os.WriteFile(p, []byte(tests[0].in), 0o600)
	if ci, err := ReadConnectionFile(p); err != nil || ci.HBPort != 5 || ci.Key != "k" {
		t.Fatalf("ReadConnectionFile = %+v, %v", ci, err)
	}
	if _, err := ReadConnectionFile(filepath.Join(dir, "missing.json")); err == nil {
		t.Fatal("missing file accepted")
	}
}

func TestNewID(t *testing.T) {
	a, b := NewID(), NewID()
	if a == b || len(a) != 36 || a[14] != '4' {
		t.Fatalf("ids %q %q", a, b)
	}
}
