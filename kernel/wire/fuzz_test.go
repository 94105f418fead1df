package wire

import (
	"bytes"
	"testing"
)

// FuzzDecode feeds arbitrary frames to Decode: it must never panic, must reject
// anything not signed with the key, and a message it accepts must survive
// Encode/Decode unchanged.
func FuzzDecode(f *testing.F) {
	s, _ := NewSigner("hmac-sha256", testKey)
	join := func(fs [][]byte) []byte { return bytes.Join(fs, []byte{0}) }
	f.Add(join(signed(s, []string{"id"}, hdr, parent, meta, body)), true)
	f.Add(join(signed(s, nil, hdr, parent, meta, body, "buffer")), true)
	f.Add(join(signed(s, nil, hdr, `{"msg_id":"p"}`, meta, `{"a":[1,2,{"b":null}]}`)), false)
	f.Add(join(frames(nil, "bad", hdr, parent, meta, body)), true)
	f.Add(join(signed(s, nil, `{"msg_id":`, parent, meta, body)), true)
	f.Add([]byte("<IDS|MSG>"), true)
	f.Add([]byte{}, false)
	f.Fuzz(func(t *testing.T, data []byte, resign bool) {
		fs := bytes.Split(data, []byte{0})
		if resign {
			// Re-sign so that the fuzzer reaches the JSON checks.
			for i, fr := range fs {
				if string(fr) == Delimiter && len(fs) >= i+6 {
					fs[i+1] = s.Sign(fs[i+2 : i+6]...)
					break
				}
			}
		}
		m, err := Decode(fs, s)
		if err != nil {
			return
		}
		if m.Header.MsgType == "" {
			t.Fatalf("accepted a message without msg_type")
		}
		m2, err := Decode(Encode(m, s), s)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if m2.Header != m.Header || !bytes.Equal(m2.Content, m.Content) {
			t.Fatalf("round trip changed the message")
		}
	})
}
