// Package wire is the Jupyter messaging transport: the connection file, the
// HMAC-signed multipart message format, and the five ZeroMQ sockets (shell,
// control, stdin, iopub, heartbeat) served with the pure-Go zmq4 library.
//
// The package knows nothing of Go or of what a message means; routing lives
// in kernel/dispatch. A kernel reads its connection file, listens, and then
// receives decoded, signature-checked messages per channel:
//
//	info, err := wire.ReadConnectionFile(path)
//	srv, err := wire.Listen(ctx, info, logger)
//	for msg := range srv.Incoming(wire.Shell) {
//		srv.Reply(wire.Shell, msg, "kernel_info_reply", content)
//	}
package wire

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"time"
)

// ProtocolVersion is the Jupyter messaging protocol version this package speaks.
const ProtocolVersion = "5.3"

// Delimiter separates the routing identities from the signed message frames.
const Delimiter = "<IDS|MSG>"

// Errors returned by Decode. They are wrapped with detail; test with errors.Is.
var (
	ErrNoDelimiter = errors.New("wire: no <IDS|MSG> delimiter")
	ErrShort       = errors.New("wire: fewer than 5 frames after the delimiter")
	ErrSignature   = errors.New("wire: bad or missing signature")
	ErrMalformed   = errors.New("wire: malformed message")
)

// Header is a message header as the protocol defines it.
type Header struct {
	MsgID    string `json:"msg_id"`
	Session  string `json:"session"`
	Username string `json:"username"`
	Date     string `json:"date"`
	MsgType  string `json:"msg_type"`
	Version  string `json:"version"`
}

// Message is one decoded Jupyter message. RawHeader keeps the header exactly as
// it arrived so that replies can carry it unchanged as their parent_header.
type Message struct {
	Identities   [][]byte
	Header       Header
	RawHeader    json.RawMessage
	ParentHeader json.RawMessage
	Metadata     json.RawMessage
	Content      json.RawMessage
	Buffers      [][]byte
}

// Type returns the message type, header.msg_type.
func (m *Message) Type() string { return m.Header.MsgType }

// DecodeContent unmarshals the content into v.
func (m *Message) DecodeContent(v any) error {
	if err := json.Unmarshal(m.Content, v); err != nil {
		return fmt.Errorf("wire: %s content: %w", m.Header.MsgType, err)
	}
	return nil
}

// Signer signs and verifies messages with HMAC-SHA256. A Signer with an empty
// key signs with the empty string and accepts any signature, as the protocol
// specifies for an empty key.
type Signer struct {
	key []byte
}

// NewSigner returns a Signer for the connection file's key and signature scheme.
// Only "hmac-sha256" (or "" with an empty key) is supported.
func NewSigner(scheme, key string) (Signer, error) {
	if key != "" && scheme != "hmac-sha256" {
		return Signer{}, fmt.Errorf("wire: signature scheme %q not supported (want hmac-sha256)", scheme)
	}
	return Signer{key: []byte(key)}, nil
}

func (s Signer) mac(parts [][]byte) hash.Hash {
	h := hmac.New(sha256.New, s.key)
	for _, p := range parts {
		h.Write(p)
	}
	return h
}

// Sign returns the hex signature of the four signed frames (header, parent
// header, metadata, content).
func (s Signer) Sign(parts ...[]byte) []byte {
	if len(s.key) == 0 {
		return []byte{}
	}
	sum := s.mac(parts).Sum(nil)
	out := make([]byte, hex.EncodedLen(len(sum)))
	hex.Encode(out, sum)
	return out
}

// Verify reports whether sig is the signature of parts. The comparison runs in
// constant time (hmac.Equal).
func (s Signer) Verify(sig []byte, parts ...[]byte) bool {
	if len(s.key) == 0 {
		return true
	}
	want := s.Sign(parts...)
	return hmac.Equal(bytes.ToLower(sig), want)
}

// Decode parses the frames of one multipart message, checks its signature and
// its JSON. A message that fails any check is returned as an error wrapping
// ErrNoDelimiter, ErrShort, ErrSignature or ErrMalformed; it must not be acted on.
func Decode(frames [][]byte, s Signer) (*Message, error) {
	i := 0
	for ; i < len(frames); i++ {
		if string(frames[i]) == Delimiter {
			break
		}
	}
	if i == len(frames) {
		return nil, ErrNoDelimiter
	}
	rest := frames[i+1:]
	if len(rest) < 5 {
		return nil, fmt.Errorf("%w: %d", ErrShort, len(rest))
	}
	sig, parts := rest[0], rest[1:5]
	if len(s.key) > 0 && len(sig) == 0 {
		return nil, fmt.Errorf("%w: signature frame empty", ErrSignature)
	}
	if !s.Verify(sig, parts...) {
		return nil, ErrSignature
	}
	m := &Message{
		Identities:   copyFrames(frames[:i]),
		RawHeader:    json.RawMessage(bytes.Clone(parts[0])),
		ParentHeader: json.RawMessage(bytes.Clone(parts[1])),
		Metadata:     json.RawMessage(bytes.Clone(parts[2])),
		Content:      json.RawMessage(bytes.Clone(parts[3])),
		Buffers:      copyFrames(rest[5:]),
	}
	if err := json.Unmarshal(m.RawHeader, &m.Header); err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrMalformed, err)
	}
	if m.Header.MsgType == "" || m.Header.MsgID == "" {
		return nil, fmt.Errorf("%w: header without msg_type or msg_id", ErrMalformed)
	}
	for _, p := range []struct {
		name string
		raw  json.RawMessage
	}{{"parent_header", m.ParentHeader}, {"metadata", m.Metadata}, {"content", m.Content}} {
		if !isObject(p.raw) {
			return nil, fmt.Errorf("%w: %s is not a JSON object", ErrMalformed, p.name)
		}
	}
	return m, nil
}

// isObject reports whether raw is a valid JSON object.
func isObject(raw []byte) bool {
	raw = bytes.TrimSpace(raw)
	if len(raw) < 2 || raw[0] != '{' {
		return false
	}
	return json.Valid(raw)
}

// Encode returns the frames of m: identities, delimiter, signature, header,
// parent header, metadata, content, buffers. Empty parent header and metadata
// are sent as {}.
func Encode(m *Message, s Signer) [][]byte {
	parts := [][]byte{orEmpty(m.RawHeader), orEmpty(m.ParentHeader), orEmpty(m.Metadata), orEmpty(m.Content)}
	frames := make([][]byte, 0, len(m.Identities)+6+len(m.Buffers))
	frames = append(frames, m.Identities...)
	frames = append(frames, []byte(Delimiter), s.Sign(parts...))
	frames = append(frames, parts...)
	frames = append(frames, m.Buffers...)
	return frames
}

func orEmpty(raw json.RawMessage) []byte {
	if len(raw) == 0 {
		return []byte("{}")
	}
	return raw
}

func copyFrames(fs [][]byte) [][]byte {
	if len(fs) == 0 {
		return nil
	}
	out := make([][]byte, len(fs))
	for i, f := range fs {
		out[i] = bytes.Clone(f)
	}
	return out
}

// NewID returns a random UUID (version 4) string for msg_id and session ids.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// NewMessage builds a message of msgType from session with content, as a reply
// or a publication caused by parent (nil for none). Identities are copied from
// parent; callers publishing on iopub replace them with a topic.
func NewMessage(session, msgType string, parent *Message, content any) (*Message, error) {
	h := Header{
		MsgID:    NewID(),
		Session:  session,
		Username: "kernel",
		Date:     time.Now().UTC().Format("2006-01-02T15:04:05.000000Z07:00"),
		MsgType:  msgType,
		Version:  ProtocolVersion,
	}
	rawH, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("wire: header: %w", err)
	}
	var c []byte
	if raw, ok := content.(json.RawMessage); ok {
		c = raw
	} else if c, err = json.Marshal(content); err != nil {
		return nil, fmt.Errorf("wire: %s content: %w", msgType, err)
	}
	m := &Message{Header: h, RawHeader: rawH, Content: c, Metadata: json.RawMessage("{}")}
	if parent != nil {
		m.ParentHeader = parent.RawHeader
		m.Identities = parent.Identities
	}
	return m, nil
}
