package storage

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/ctfed/ctfed/node"
)

// A node backup is what `ctfed backup` writes: everything needed to bring a
// node back on a new machine with only its passphrase (or recovery key).
//
//	[8]  magic "CTFEDNB1"
//	u32  length of keys.json, then keys.json as it is on disk (sealed under
//	     the passphrase and the recovery key)
//	u32  length of the configuration file, then the file
//	...  the store backup written by Backup (encrypted under the store key)
//
// The keys travel sealed and the store encrypted, so the file is as safe as
// the node directory itself.
const nodeBackupMagic = "CTFEDNB1"

const maxNodeBackupPart = 1 << 20

// BackupNode writes a node backup to w: the node's sealed keys.json, the
// configuration file's bytes, then Backup's encrypted store stream.
func (db *DB) BackupNode(ctx context.Context, w io.Writer, configFile []byte) error {
	const op = "storage.BackupNode"
	keys, err := os.ReadFile(filepath.Join(db.Dir, KeysFile))
	if err != nil {
		return node.E(op, node.Internal, "%w", err)
	}
	if len(keys) > maxNodeBackupPart || len(configFile) > maxNodeBackupPart {
		return node.E(op, node.Invalid, "keys or configuration file too large")
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	bw.WriteString(nodeBackupMagic)
	for _, part := range [][]byte{keys, configFile} {
		binary.Write(bw, binary.BigEndian, uint32(len(part)))
		bw.Write(part)
	}
	if err := db.Backup(ctx, bw); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return node.E(op, node.Internal, "%w", err)
	}
	return nil
}

// NodeBackup is the head of a node backup, read by ReadNodeBackup; the
// store stream follows in Rest.
type NodeBackup struct {
	Keys     []byte
	Config   []byte
	Insecure bool
	Rest     io.Reader
}

// ReadNodeBackup reads the head of a node backup. Returns Invalid for a file
// that is not a node backup or is damaged.
func ReadNodeBackup(r io.Reader) (*NodeBackup, error) {
	const op = "storage.ReadNodeBackup"
	br := bufio.NewReaderSize(r, 64<<10)
	magic := make([]byte, len(nodeBackupMagic))
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != nodeBackupMagic {
		return nil, node.E(op, node.Invalid, "not a ctfed node backup")
	}
	var parts [2][]byte
	for i := range parts {
		var n uint32
		if err := binary.Read(br, binary.BigEndian, &n); err != nil {
			return nil, node.E(op, node.Invalid, "the backup is truncated")
		}
		if n > maxNodeBackupPart {
			return nil, node.E(op, node.Invalid, "the backup is damaged (a part of %d bytes)", n)
		}
		parts[i] = make([]byte, n)
		if _, err := io.ReadFull(br, parts[i]); err != nil {
			return nil, node.E(op, node.Invalid, "the backup is truncated")
		}
	}
	kf, err := parseKeyFile(parts[0])
	if err != nil {
		return nil, node.E(op, node.Invalid, "the backup's keys are damaged: %v", err)
	}
	return &NodeBackup{Keys: parts[0], Config: parts[1], Insecure: kf.Insecure, Rest: br}, nil
}

// RestoreNode creates the node directory dir from a node backup: it writes
// the backup's keys.json, unwraps it with passphrase (any for an insecure
// node), and restores the store. dir must not exist or be empty; on any
// error what was written is removed. The caller writes the configuration
// file from b.Config.
func RestoreNode(ctx context.Context, dir string, b *NodeBackup, passphrase []byte) (*Keyring, error) {
	const op = "storage.RestoreNode"
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return nil, node.E(op, node.Conflict, "%s is not empty: restore into a new directory", dir)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, node.E(op, node.Internal, "%w", err)
	}
	created := false
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		created = true
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, node.E(op, node.Internal, "%w", err)
	}
	cleanup := func() {
		os.RemoveAll(filepath.Join(dir, StoreDir))
		os.Remove(filepath.Join(dir, KeysFile))
		if created {
			os.Remove(dir)
		}
	}
	if err := writeFileAtomic(filepath.Join(dir, KeysFile), b.Keys, 0o600); err != nil {
		cleanup()
		return nil, node.E(op, node.Internal, "%w", err)
	}
	kr, err := OpenKeyring(dir, passphrase)
	if err != nil {
		cleanup()
		return nil, err
	}
	db := NewDB(dir, kr)
	if err := db.Restore(ctx, b.Rest); err != nil {
		cleanup()
		return nil, err
	}
	return kr, nil
}
