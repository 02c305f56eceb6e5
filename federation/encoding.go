package federation

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/ctfed/ctfed/node"
)

// Domain tags: every signature covers a tag naming the kind of document, so
// a signature over one kind can never be taken for another.
const (
	tagCertificate = "ctfed certificate v1\x00"
	tagRoster      = "ctfed roster v1\x00"
	tagJoinRequest = "ctfed join request v1\x00"
	tagAnswer      = "ctfed answer v1\x00"
)

// Size limits of the documents a node decodes.
const (
	// MaxJoinRequestSize bounds an encoded join request.
	MaxJoinRequestSize = 16 << 10
	// MaxCertificateSize bounds an encoded certificate.
	MaxCertificateSize = 16 << 10
	// MaxRosterSize bounds an encoded roster, in a file or on the wire.
	MaxRosterSize = 8 << 20
	// MaxBundleSize bounds an encoded join bundle.
	MaxBundleSize = MaxRosterSize + 64<<10
)

// Bounds on the fields of membership documents.
const (
	maxOrgLen     = 200
	maxAddrs      = 16
	maxAddrLen    = 512
	maxPeerIDLen  = 128
	maxRosterSize = 100_000 // certificates plus revocations
)

// canonical returns the canonical bytes of a document: tag followed by the
// JSON encoding of v (whose signature field is empty). encoding/json writes
// struct fields in declaration order and floats in their shortest form, so
// decoding a document and encoding it again gives the same bytes.
func canonical(tag string, v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append([]byte(tag), b...), nil
}

// signDoc signs the canonical bytes of v under tag.
func signDoc(key ed25519.PrivateKey, tag string, v any) ([]byte, error) {
	msg, err := canonical(tag, v)
	if err != nil {
		return nil, err
	}
	return ed25519.Sign(key, msg), nil
}

// verifyDoc verifies sig over the canonical bytes of v under tag.
func verifyDoc(key ed25519.PublicKey, tag string, v any, sig []byte) bool {
	if len(key) != ed25519.PublicKeySize || len(sig) != ed25519.SignatureSize {
		return false
	}
	msg, err := canonical(tag, v)
	if err != nil {
		return false
	}
	return ed25519.Verify(key, msg, sig)
}

// decodeStrict decodes exactly one JSON value of at most limit bytes into v,
// refusing unknown fields and trailing data. Errors are Invalid and never
// echo the input.
func decodeStrict(op string, data []byte, limit int, v any) error {
	if len(data) > limit {
		return node.E(op, node.Invalid, "%d bytes; the limit is %d", len(data), limit)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return node.E(op, node.Invalid, "not valid JSON: %s", jsonReason(err))
	}
	if dec.More() {
		return node.E(op, node.Invalid, "data after the document")
	}
	return nil
}

// jsonReason shortens a decoding error to its reason, without the input.
func jsonReason(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("field %q has the wrong type", clip(te.Field, 64))
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "truncated"
	}
	return "malformed"
}

// clip shortens s to at most n bytes on a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// checkText refuses an empty (when required), overlong or non-UTF-8 string,
// or one with control characters.
func checkText(name, s string, max int, required bool) error {
	if s == "" {
		if required {
			return fmt.Errorf("%s is empty", name)
		}
		return nil
	}
	if len(s) > max {
		return fmt.Errorf("%s is longer than %d bytes", name, max)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s is not valid UTF-8", name)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%s has a control character", name)
		}
	}
	return nil
}

// errorf is fmt.Errorf, for causes wrapped into node errors by the caller.
func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }
