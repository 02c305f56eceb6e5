package node

import (
	"errors"
	"fmt"
	"strings"
)

// Kind classifies an error. Kinds are only ever appended: their numeric
// values and names are part of the wire format.
type Kind uint8

// The error kinds. Unknown is the zero value and is never sent.
const (
	Unknown Kind = iota
	Invalid
	NotFound
	Permission
	BudgetExhausted
	Unavailable
	Internal
	Conflict
)

var kindNames = [...]string{"unknown", "invalid", "not_found", "permission", "budget_exhausted", "unavailable", "internal", "conflict"}

// String returns the kind's stable name, as used on the wire and in JSON.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// ParseKind returns the kind named s, or Unknown.
func ParseKind(s string) Kind {
	for i, n := range kindNames {
		if n == s {
			return Kind(i)
		}
	}
	return Unknown
}

// Message returns the fixed message for a kind: what may be shown to a
// remote peer or an HTTP client in place of an internal error's text.
func (k Kind) Message() string {
	switch k {
	case Invalid:
		return "the request is invalid"
	case NotFound:
		return "not found"
	case Permission:
		return "permission denied"
	case BudgetExhausted:
		return "privacy budget exhausted"
	case Unavailable:
		return "temporarily unavailable"
	case Conflict:
		return "conflicts with the current state"
	default:
		return "internal error"
	}
}

// Error is ctfed's one error type. Op names the operation that failed
// ("import", "storage.PutCases"); Kind classifies it; Err carries the cause.
// An Error's text may name fields and codes but never holds an identity
// field's value.
type Error struct {
	Op   string
	Kind Kind
	Err  error
}

// Error implements error.
func (e *Error) Error() string {
	var b strings.Builder
	if e.Op != "" {
		b.WriteString(e.Op)
		b.WriteString(": ")
	}
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	} else {
		b.WriteString(e.Kind.Message())
	}
	return b.String()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// E builds an *Error of kind k for op, with a formatted cause.
func E(op string, k Kind, format string, args ...any) error {
	return &Error{Op: op, Kind: k, Err: fmt.Errorf(format, args...)}
}

// KindOf returns the kind of the outermost *Error in err's chain that has
// one, Internal for any other non-nil error, and Unknown for nil.
func KindOf(err error) Kind {
	if err == nil {
		return Unknown
	}
	for e := err; e != nil; {
		var ne *Error
		if !errors.As(e, &ne) {
			break
		}
		if ne.Kind != Unknown {
			return ne.Kind
		}
		e = ne.Err
	}
	return Internal
}

// FieldError is one problem with one field of a record. Value is the
// offending value, or empty when the field is an identity field (its value is
// never repeated in an error).
type FieldError struct {
	Field string
	Value string
	Msg   string
}

// Error implements error.
func (f FieldError) Error() string {
	if f.Value == "" {
		return fmt.Sprintf("%s: %s", f.Field, f.Msg)
	}
	return fmt.Sprintf("%s: %s (got %q)", f.Field, f.Msg, f.Value)
}

// FieldErrors is every problem found in one record, in field order.
type FieldErrors []FieldError

// Error implements error.
func (fe FieldErrors) Error() string {
	parts := make([]string, len(fe))
	for i, f := range fe {
		parts[i] = f.Error()
	}
	return strings.Join(parts, "; ")
}

// FieldErrorsOf returns the FieldErrors inside err, if any.
func FieldErrorsOf(err error) FieldErrors {
	var fe FieldErrors
	if errors.As(err, &fe) {
		return fe
	}
	return nil
}
