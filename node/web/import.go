package web

import "sync"

// DefaultMaxImportBytes bounds an uploaded case file when
// Server.MaxImportBytes is 0.
const DefaultMaxImportBytes = 64 << 20

// importStore keeps uploaded, checked case files until they are confirmed
// or expire.
type importStore struct {
	mu sync.Mutex
	m  map[string]*pendingImport
}

// pendingImport is a checked case file waiting for confirmation.
type pendingImport struct{}
