package adsec

import "fmt"

// FormatError reports malformed binary input: which field was wrong and where.
type FormatError struct {
	// Field names the structure member, e.g. "DACL.ACE[2].AceSize".
	Field string
	// Offset is the byte offset of that field in the input.
	Offset int
	// Reason says what is wrong with it.
	Reason string
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("adsec: %s at offset %d: %s", e.Field, e.Offset, e.Reason)
}

func errorf(field string, offset int, format string, args ...any) error {
	return &FormatError{Field: field, Offset: offset, Reason: fmt.Sprintf(format, args...)}
}
