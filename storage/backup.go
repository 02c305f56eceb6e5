package storage

import (
	"bufio"
	"bytes"
	"context"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/dgraph-io/badger/v4"
	"go.uber.org/zap"

	"github.com/ctfed/ctfed/node"
)

// A backup file is a header and a sequence of AES-256-GCM frames:
//
//	header  [8]  magic "CTFEDBK1"
//	        u32  schema version of the store
//	        u32  largest plaintext of a frame (backupFrameSize)
//	        [16] salt: the backup key is HKDF-SHA256(store key, salt)
//	frame   u32  ciphertext length, top bit set on the final frame
//	        []   AES-GCM(plaintext), nonce = u64 frame counter || 0 0 0 || final,
//	             additional data = the header
//
// The plaintext is the store's current key/value pairs, each as a uvarint
// key length, key, uvarint value length, value. Frames are numbered and the
// last one is marked, so a reordered, truncated or extended file is
// refused. The store's values are already sealed (identity fields under
// per-case keys), so a backup holds no plain case content at all, and it can
// only be restored with the node's keyring.
const (
	backupMagic      = "CTFEDBK1"
	backupHeaderLen  = 32
	backupFrameSize  = 64 << 10
	backupFinalBit   = 1 << 31
	maxBackupKeyLen  = 1 << 16
	maxBackupValLen  = 1 << 26
	backupRestoreDir = StoreDir + ".restore"
)

// errBackupTruncated reports a backup that ends before its final frame.
var errBackupTruncated = errors.New("the backup is truncated")

// Backup writes an encrypted copy of the store's current contents to w. It
// is a consistent snapshot taken between writes (never in the middle of an
// erase's key rotation); writes may continue while it is written.
func (db *DB) Backup(ctx context.Context, w io.Writer) error {
	const op = "storage.Backup"
	if err := db.begin(ctx, op); err != nil {
		return err
	}
	defer db.lc.RUnlock()
	fw, err := newFrameWriter(w, db.Keyring.storeKey(), SchemaVersion)
	if err != nil {
		return node.E(op, node.Internal, "%w", err)
	}
	db.mu.Lock()
	txn := db.bdb.NewTransaction(false)
	db.mu.Unlock()
	defer txn.Discard()
	err = func() error {
		it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: true, PrefetchSize: 256})
		defer it.Close()
		var rec []byte
		n := 0
		for it.Rewind(); it.Valid(); it.Next() {
			if n++; n%1024 == 0 {
				if err := ctx.Err(); err != nil {
					return node.E("", node.Unavailable, "%w", err)
				}
			}
			item := it.Item()
			err := item.Value(func(v []byte) error {
				rec = appendBytes(appendBytes(rec[:0], item.Key()), v)
				_, err := fw.Write(rec)
				return err
			})
			if err != nil {
				return err
			}
		}
		return nil
	}()
	if err == nil {
		err = fw.Close()
	}
	if err != nil {
		return wrapOp(op, err)
	}
	return nil
}

// Restore fills the store of a node directory from a backup made by Backup
// with the same keyring. It is called instead of Open, on a DB whose
// directory holds no store yet; the store appears whole or not at all. Open
// the DB afterwards. Returns Conflict when the directory already has a
// store, Permission when the backup was made with other keys, Invalid for a
// damaged or truncated backup or one of a newer schema.
func (db *DB) Restore(ctx context.Context, r io.Reader) error {
	const op = "storage.Restore"
	db.lc.Lock()
	defer db.lc.Unlock()
	switch {
	case db.bdb != nil:
		return node.E(op, node.Invalid, "restore into an open store")
	case db.Dir == "" || db.Keyring == nil:
		return node.E(op, node.Invalid, "no node directory or keyring")
	case db.IndexCacheSize <= 0:
		return node.E(op, node.Invalid, "IndexCacheSize must be positive for an encrypted store")
	}
	if db.Logger == nil {
		db.Logger = zap.NewNop()
	}
	storeDir := filepath.Join(db.Dir, StoreDir)
	if entries, err := os.ReadDir(storeDir); err == nil && len(entries) > 0 {
		return node.E(op, node.Conflict, "%s already has a store: restore into a new node directory holding only this node's %s", db.Dir, KeysFile)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return node.E(op, node.Internal, "%w", err)
	}
	fr, err := newFrameReader(r, db.Keyring.storeKey())
	if err != nil {
		return wrapOp(op, err)
	}
	tmp := filepath.Join(db.Dir, backupRestoreDir)
	if err := removeStore(tmp); err != nil {
		return node.E(op, node.Internal, "%w", err)
	}
	if err := db.load(ctx, tmp, fr); err != nil {
		removeStore(tmp)
		return wrapOp(op, err)
	}
	if err := os.Remove(storeDir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		removeStore(tmp)
		return node.E(op, node.Internal, "%w", err)
	}
	if err := os.Rename(tmp, storeDir); err != nil {
		removeStore(tmp)
		return node.E(op, node.Internal, "%w", err)
	}
	if err := syncDir(db.Dir); err != nil {
		return node.E(op, node.Internal, "%w", err)
	}
	return nil
}

// load writes the key/value pairs of a backup into a new badger store in dir.
func (db *DB) load(ctx context.Context, dir string, fr *frameReader) error {
	bdb, err := badger.Open(db.options(dir))
	if err != nil {
		return openError("", dir, err)
	}
	wb := bdb.NewWriteBatch()
	err = readBackupPairs(ctx, fr, func(k, v []byte) error {
		return wb.Set(bytes.Clone(k), bytes.Clone(v))
	})
	if err == nil {
		err = wb.Flush()
	} else {
		wb.Cancel()
	}
	if err == nil {
		err = bdb.Sync()
	}
	if cerr := bdb.Close(); err == nil && cerr != nil {
		err = cerr
	}
	return err
}

// readBackupPairs calls fn for every key/value pair of a backup's
// plaintext. It checks that the backup holds a schema version no newer than
// this build's.
func readBackupPairs(ctx context.Context, fr *frameReader, fn func(k, v []byte) error) error {
	br := bufio.NewReaderSize(fr, 64<<10)
	var k, v []byte
	sawSchema := false
	for n := 0; ; n++ {
		if n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return node.E("", node.Unavailable, "%w", err)
			}
		}
		kl, err := binary.ReadUvarint(br)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return backupReadError(err)
		}
		if kl == 0 || kl > maxBackupKeyLen {
			return node.E("", node.Invalid, "the backup is damaged: bad key length")
		}
		if k, err = readN(br, k, kl); err != nil {
			return backupReadError(err)
		}
		vl, err := binary.ReadUvarint(br)
		if err != nil {
			return backupReadError(err)
		}
		if vl > maxBackupValLen {
			return node.E("", node.Invalid, "the backup is damaged: bad value length")
		}
		if v, err = readN(br, v, vl); err != nil {
			return backupReadError(err)
		}
		if bytes.Equal(k, keySchema) {
			if len(v) != 4 || binary.BigEndian.Uint32(v) != fr.schema {
				return node.E("", node.Invalid, "the backup is damaged: its schema versions disagree")
			}
			sawSchema = true
		}
		if err := fn(k, v); err != nil {
			return err
		}
	}
	if !sawSchema {
		return node.E("", node.Invalid, "the backup is damaged: no schema version")
	}
	return nil
}

func readN(r io.Reader, buf []byte, n uint64) ([]byte, error) {
	if uint64(cap(buf)) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf, nil
}

func backupReadError(err error) error {
	var ne *node.Error
	if errors.As(err, &ne) {
		return err
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return node.E("", node.Invalid, "the backup is damaged: a record is cut short")
	}
	return node.E("", node.Internal, "read backup: %w", err)
}

func backupHeader(schema uint32, salt []byte) []byte {
	h := make([]byte, 0, backupHeaderLen)
	h = append(h, backupMagic...)
	h = binary.BigEndian.AppendUint32(h, schema)
	h = binary.BigEndian.AppendUint32(h, backupFrameSize)
	return append(h, salt...)
}

func backupAEAD(storeKey, salt []byte) (cipher.AEAD, error) {
	k, err := hkdf.Key(sha256.New, storeKey, salt, "ctfed backup v1", 32)
	if err != nil {
		return nil, err
	}
	return newGCM(k)
}

func frameNonce(nonce []byte, counter uint64, final bool) []byte {
	binary.BigEndian.PutUint64(nonce, counter)
	nonce[8], nonce[9], nonce[10], nonce[11] = 0, 0, 0, 0
	if final {
		nonce[11] = 1
	}
	return nonce
}

// frameWriter encrypts a stream into backup frames.
type frameWriter struct {
	w       io.Writer
	aead    cipher.AEAD
	header  []byte
	counter uint64
	buf     []byte // plaintext of the frame being filled
	out     []byte
	nonce   [gcmNonceLen]byte
	err     error
}

func newFrameWriter(w io.Writer, storeKey []byte, schema uint32) (*frameWriter, error) {
	salt := randomBytes(16)
	aead, err := backupAEAD(storeKey, salt)
	if err != nil {
		return nil, err
	}
	fw := &frameWriter{w: w, aead: aead, header: backupHeader(schema, salt), buf: make([]byte, 0, backupFrameSize)}
	if _, err := w.Write(fw.header); err != nil {
		return nil, err
	}
	return fw, nil
}

// Write buffers p, sealing every full frame that more data follows.
func (fw *frameWriter) Write(p []byte) (int, error) {
	if fw.err != nil {
		return 0, fw.err
	}
	n := len(p)
	for len(p) > 0 {
		if len(fw.buf) == backupFrameSize {
			if err := fw.flush(false); err != nil {
				return 0, err
			}
		}
		m := copy(fw.buf[len(fw.buf):backupFrameSize], p)
		fw.buf = fw.buf[:len(fw.buf)+m]
		p = p[m:]
	}
	return n, nil
}

// Close seals the final frame. It does not close the underlying writer.
func (fw *frameWriter) Close() error {
	if fw.err != nil {
		return fw.err
	}
	if err := fw.flush(true); err != nil {
		return err
	}
	fw.err = errors.New("backup writer closed")
	return nil
}

func (fw *frameWriter) flush(final bool) error {
	nonce := frameNonce(fw.nonce[:], fw.counter, final)
	fw.out = binary.BigEndian.AppendUint32(fw.out[:0], 0)
	fw.out = fw.aead.Seal(fw.out, nonce, fw.buf, fw.header)
	l := uint32(len(fw.out) - 4)
	if final {
		l |= backupFinalBit
	}
	binary.BigEndian.PutUint32(fw.out, l)
	fw.counter++
	fw.buf = fw.buf[:0]
	if _, err := fw.w.Write(fw.out); err != nil {
		fw.err = err
		return err
	}
	return nil
}

// frameReader decrypts backup frames; it returns io.EOF only after a valid
// final frame followed by the end of the input.
type frameReader struct {
	r       *bufio.Reader
	aead    cipher.AEAD
	header  []byte
	schema  uint32
	counter uint64
	plain   []byte
	ct      []byte
	nonce   [gcmNonceLen]byte
	done    bool
	err     error
}

// newFrameReader reads and checks a backup's header. Returns Invalid for a
// file that is not a backup or one of a newer schema.
func newFrameReader(r io.Reader, storeKey []byte) (*frameReader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	h := make([]byte, backupHeaderLen)
	if _, err := io.ReadFull(br, h); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, node.E("", node.Invalid, "not a ctfed backup (too short)")
		}
		return nil, node.E("", node.Internal, "read backup: %w", err)
	}
	if string(h[:8]) != backupMagic {
		return nil, node.E("", node.Invalid, "not a ctfed backup")
	}
	schema := binary.BigEndian.Uint32(h[8:])
	if err := checkSchemaVersion("backup", schema); err != nil {
		return nil, err
	}
	if fs := binary.BigEndian.Uint32(h[12:]); fs != backupFrameSize {
		return nil, node.E("", node.Invalid, "the backup is damaged: frame size %d", fs)
	}
	aead, err := backupAEAD(storeKey, h[16:])
	if err != nil {
		return nil, node.E("", node.Internal, "%w", err)
	}
	return &frameReader{r: br, aead: aead, header: h, schema: schema}, nil
}

func (fr *frameReader) Read(p []byte) (int, error) {
	for len(fr.plain) == 0 {
		if fr.err != nil {
			return 0, fr.err
		}
		if fr.done {
			fr.err = io.EOF
			return 0, io.EOF
		}
		if err := fr.next(); err != nil {
			fr.err = err
			return 0, err
		}
	}
	n := copy(p, fr.plain)
	fr.plain = fr.plain[n:]
	return n, nil
}

func (fr *frameReader) next() error {
	var lb [4]byte
	if _, err := io.ReadFull(fr.r, lb[:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return node.E("", node.Invalid, "%w", errBackupTruncated)
		}
		return node.E("", node.Internal, "read backup: %w", err)
	}
	l := binary.BigEndian.Uint32(lb[:])
	final := l&backupFinalBit != 0
	l &^= backupFinalBit
	if l < gcmTagLen || l > backupFrameSize+gcmTagLen {
		return node.E("", node.Invalid, "the backup is damaged: frame %d has a bad length", fr.counter)
	}
	if cap(fr.ct) < int(l) {
		fr.ct = make([]byte, l)
	}
	fr.ct = fr.ct[:l]
	if _, err := io.ReadFull(fr.r, fr.ct); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return node.E("", node.Invalid, "%w", errBackupTruncated)
		}
		return node.E("", node.Internal, "read backup: %w", err)
	}
	plain, err := fr.aead.Open(fr.plain[:0], frameNonce(fr.nonce[:], fr.counter, final), fr.ct, fr.header)
	if err != nil {
		if fr.counter == 0 {
			return node.E("", node.Permission, "the backup was not made with this node's keys, or is damaged")
		}
		return node.E("", node.Invalid, "the backup is damaged: frame %d does not authenticate", fr.counter)
	}
	fr.counter++
	fr.plain = plain
	if final {
		fr.done = true
		if _, err := fr.r.ReadByte(); err == nil {
			return node.E("", node.Invalid, "the backup is damaged: data after its final frame")
		} else if !errors.Is(err, io.EOF) {
			return node.E("", node.Internal, "read backup: %w", err)
		}
	}
	return nil
}
