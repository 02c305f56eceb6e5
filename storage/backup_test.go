package storage

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/ctfed/ctfed/node"
)

// MustBackup returns a backup of db.
func MustBackup(tb testing.TB, db *DB) []byte {
	tb.Helper()
	var buf bytes.Buffer
	if err := db.Backup(context.Background(), &buf); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// newRestoreDir returns a new node directory holding only a copy of the
// keys.json of dir, and its keyring.
func newRestoreDir(tb testing.TB, dir string) (string, *Keyring) {
	tb.Helper()
	to := tb.TempDir()
	data, err := os.ReadFile(filepath.Join(dir, KeysFile))
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(to, KeysFile), data, 0o600); err != nil {
		tb.Fatal(err)
	}
	kr, err := OpenKeyring(to, testPassphrase)
	if err != nil {
		tb.Fatal(err)
	}
	return to, kr
}

func TestBackup_RoundTrip(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	const n = 1500
	MustPut(t, db, node.CreateOnly, testCases(0, n)...)
	v2 := testCase(10)
	v2.Status = "closed"
	MustPut(t, db, node.Upsert, v2)
	if err := db.EraseIdentity(ctx, testCase(11).Code, "officer"); err != nil {
		t.Fatal(err)
	}
	backup := MustBackup(t, db)

	// The backup is encrypted: no identity field and no plain case content.
	assertNoSecretsIn(t, "backup", backup, secretsOf(0, n))
	for _, plain := range []string{"assistance_case", "forced_labour", "screened", "cw-7", "tester", testCase(0).Code} {
		if bytes.Contains(backup, []byte(plain)) {
			t.Fatalf("backup holds case content %q in plain text", plain)
		}
	}

	dir, kr := newRestoreDir(t, db.Dir)
	restored := NewTestDB(dir, kr)
	if err := restored.Restore(ctx, bytes.NewReader(backup)); err != nil {
		t.Fatal(err)
	}
	if err := restored.Open(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { restored.Close(ctx) })
	if got, _ := restored.CaseCount(ctx); got != n {
		t.Fatalf("got count %d, want %d", got, n)
	}
	var want, got []*node.Case
	if err := db.ForEachCase(ctx, true, func(c *node.Case) error { want = append(want, c); return nil }); err != nil {
		t.Fatal(err)
	}
	if err := restored.ForEachCase(ctx, true, func(c *node.Case) error { got = append(got, c); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("got %d cases, want %d", len(got), len(want))
	}
	for i := range want {
		assertSameCase(t, got[i], want[i])
		if got[i].Version != want[i].Version || got[i].IdentityErased != want[i].IdentityErased {
			t.Fatalf("case %s: got version %d erased %v, want %d %v", want[i].Code,
				got[i].Version, got[i].IdentityErased, want[i].Version, want[i].IdentityErased)
		}
	}
	hist, err := restored.CaseHistory(ctx, v2.Code, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 2 || hist[0].Identity.FullName != fakeName(10) {
		t.Fatalf("got %d versions, want 2 with identity", len(hist))
	}
	// The restored store takes writes.
	MustPut(t, restored, node.CreateOnly, testCase(n))
}

func TestRestore_Errors(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	MustPut(t, db, node.CreateOnly, testCases(0, 1000)...)
	backup := MustBackup(t, db)
	if len(backup) < 3*backupFrameSize/2 {
		t.Fatalf("backup of %d bytes: want more than one frame for this test", len(backup))
	}
	other, _ := MustCreateKeyring(t)

	flip := func(i int) []byte {
		b := bytes.Clone(backup)
		b[i] ^= 1
		return b
	}
	for _, tt := range []struct {
		name string
		data []byte
		kr   *Keyring // nil: the node's own
		want node.Kind
	}{
		{"Empty", nil, nil, node.Invalid},
		{"NotABackup", []byte("this is not a ctfed backup file at all, just text"), nil, node.Invalid},
		{"HeaderOnly", backup[:backupHeaderLen], nil, node.Invalid},
		{"Truncated", backup[:len(backup)-100], nil, node.Invalid},
		{"TruncatedAtFrame", backup[:backupHeaderLen+4+backupFrameSize+gcmTagLen], nil, node.Invalid},
		{"TrailingData", append(bytes.Clone(backup), 0), nil, node.Invalid},
		{"FlippedHeader", flip(20), nil, node.Permission},
		{"FlippedFirstFrame", flip(backupHeaderLen + 10), nil, node.Permission},
		{"FlippedLastFrame", flip(len(backup) - 10), nil, node.Invalid},
		{"NewerSchema", func() []byte { b := bytes.Clone(backup); b[11] = SchemaVersion + 1; return b }(), nil, node.Invalid},
		{"OtherKeys", backup, other, node.Permission},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir, kr := newRestoreDir(t, db.Dir)
			if tt.kr != nil {
				kr = tt.kr
			}
			r := NewTestDB(dir, kr)
			if err := r.Restore(ctx, bytes.NewReader(tt.data)); node.KindOf(err) != tt.want {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 1 {
				t.Fatalf("got %d entries in the node directory, want only %s: a failed restore leaves nothing", len(entries), KeysFile)
			}
		})
	}

	t.Run("ErrStoreExists", func(t *testing.T) {
		r := NewTestDB(db.Dir, db.Keyring)
		if err := r.Restore(ctx, bytes.NewReader(backup)); node.KindOf(err) != node.Conflict {
			t.Fatalf("got %v, want Conflict", err)
		}
	})
	t.Run("ErrOpen", func(t *testing.T) {
		if err := db.Restore(ctx, bytes.NewReader(backup)); node.KindOf(err) != node.Invalid {
			t.Fatalf("got %v, want Invalid", err)
		}
	})
}

// TestRestore_AfterErase restores a backup taken before an erase: the
// erased identity, like every identity wrapped under the retired key
// generation, reads as erased.
func TestRestore_AfterErase(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	MustPut(t, db, node.CreateOnly, testCases(0, 5)...)
	backup := MustBackup(t, db)
	if err := db.EraseIdentity(ctx, testCase(1).Code, "officer"); err != nil {
		t.Fatal(err)
	}
	dir, kr := newRestoreDir(t, db.Dir)
	r := NewTestDB(dir, kr)
	if err := r.Restore(ctx, bytes.NewReader(backup)); err != nil {
		t.Fatal(err)
	}
	if err := r.Open(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(ctx) })
	c, err := r.Case(ctx, testCase(1).Code, true)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Identity.IsZero() || !c.IdentityErased {
		t.Fatal("an erased identity came back from an older backup")
	}
}

func TestFrameWriter_Sizes(t *testing.T) {
	key := randomBytes(32)
	for _, n := range []int{0, 1, backupFrameSize - 1, backupFrameSize, backupFrameSize + 1, 3 * backupFrameSize} {
		var buf bytes.Buffer
		fw, err := newFrameWriter(&buf, key, SchemaVersion)
		if err != nil {
			t.Fatal(err)
		}
		in := randomBytes(n)
		// Uneven writes.
		for p := in; len(p) > 0; {
			m := min(len(p), 1000+len(p)%7777)
			if _, err := fw.Write(p[:m]); err != nil {
				t.Fatal(err)
			}
			p = p[m:]
		}
		if err := fw.Close(); err != nil {
			t.Fatal(err)
		}
		fr, err := newFrameReader(&buf, key)
		if err != nil {
			t.Fatal(err)
		}
		out, err := io.ReadAll(fr)
		if err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		if !bytes.Equal(out, in) {
			t.Fatalf("%d bytes: got %d bytes back, want the same", n, len(out))
		}
	}
}

func FuzzBackupReader(f *testing.F) {
	key := bytes.Repeat([]byte{7}, 32)
	valid := func(pairs ...[]byte) []byte {
		var buf bytes.Buffer
		fw, err := newFrameWriter(&buf, key, SchemaVersion)
		if err != nil {
			f.Fatal(err)
		}
		var rec []byte
		for i := 0; i+1 < len(pairs); i += 2 {
			rec = appendBytes(appendBytes(rec[:0], pairs[i]), pairs[i+1])
			fw.Write(rec)
		}
		fw.Close()
		return buf.Bytes()
	}
	schema := []byte{0, 0, 0, SchemaVersion}
	good := valid(keySchema, schema, []byte("c/A1"), []byte("value"))
	f.Add(good)
	f.Add(good[:len(good)-1])
	f.Add(good[:backupHeaderLen])
	f.Add(valid())
	f.Add(valid([]byte("c/A1"), []byte("no schema")))
	f.Add([]byte(backupMagic))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := newFrameReader(bytes.NewReader(data), key)
		if err != nil {
			return
		}
		readBackupPairs(context.Background(), fr, func(k, v []byte) error {
			if len(k) == 0 || len(k) > maxBackupKeyLen || len(v) > maxBackupValLen {
				t.Fatalf("got a pair of key length %d and value length %d", len(k), len(v))
			}
			return nil
		})
	})
}
