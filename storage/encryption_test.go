package storage

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/ctfed/ctfed/node"
)

// secretsOf returns the identity strings of cases from..to-1 that must never
// appear in plain text: the distinctive parts every fake name, alias,
// document number, phone and narrative of testCase starts with (so that one
// scan per marker covers every case), and the whole values of the first
// cases.
func secretsOf(from, to int) [][]byte {
	out := [][]byte{[]byte("Zyxqwerty Fakename"), []byte("Qvxalias Pseudonym"), []byte("XJQ-DOCNUM-"),
		[]byte("+000 555 "), []byte("Synthetic test narrative")}
	for i := from; i < min(to, from+10); i++ {
		out = append(out, []byte(fakeName(i)), []byte(fakeAlias(i)), []byte(fakeDocument(i)))
	}
	return out
}

// assertNoSecrets fails when any file under dir contains any secret.
func assertNoSecrets(tb testing.TB, dir string, secrets [][]byte) {
	tb.Helper()
	files := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		assertNoSecretsIn(tb, path, data, secrets)
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	if files == 0 {
		tb.Fatalf("no files under %s", dir)
	}
}

func assertNoSecretsIn(tb testing.TB, name string, data []byte, secrets [][]byte) {
	tb.Helper()
	for _, s := range secrets {
		if bytes.Contains(data, s) {
			tb.Fatalf("%s holds an identity field in plain text", name)
		}
	}
}

func TestEncryption_NoIdentityInFiles(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	const n = 3000
	for from := 0; from < n; from += 1000 {
		MustPut(t, db, node.CreateOnly, testCases(from, from+1000)...)
	}
	// An update keeps an older version in the history.
	v2 := testCase(5)
	v2.Status = "closed"
	MustPut(t, db, node.Upsert, v2)
	// Before closing: the write-ahead memtable and value log are on disk.
	assertNoSecrets(t, db.Dir, secretsOf(0, n))
	// After closing: memtables flushed to tables.
	if err := db.Close(ctx); err != nil {
		t.Fatal(err)
	}
	assertNoSecrets(t, db.Dir, secretsOf(0, n))
	// Sanity check of the test: the secrets are really in the store.
	db = MustReopenDB(t, db)
	c, err := db.Case(ctx, testCase(n-1).Code, true)
	if err != nil {
		t.Fatal(err)
	}
	if c.Identity.FullName != fakeName(n-1) || c.Identity.Documents[0] != fakeDocument(n-1) {
		t.Fatal("the stored identity differs from the one written")
	}
}

func TestOpen_ErrWithoutKeys(t *testing.T) {
	db := MustOpenDB(t)
	MustPut(t, db, node.CreateOnly, testCases(0, 10)...)
	dir := db.Dir
	if err := db.Close(context.Background()); err != nil {
		t.Fatal(err)
	}

	t.Run("WrongPassphrase", func(t *testing.T) {
		if _, err := OpenKeyring(dir, []byte("not the passphrase")); node.KindOf(err) != node.Permission {
			t.Fatalf("got %v, want Permission", err)
		}
	})
	t.Run("NoKeysFile", func(t *testing.T) {
		copyDir := t.TempDir()
		if err := os.CopyFS(copyDir, os.DirFS(dir)); err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(filepath.Join(copyDir, KeysFile)); err != nil {
			t.Fatal(err)
		}
		if _, err := OpenKeyring(copyDir, testPassphrase); node.KindOf(err) != node.NotFound {
			t.Fatalf("got %v, want NotFound", err)
		}
	})
	t.Run("OtherNodesKeys", func(t *testing.T) {
		other, _ := MustCreateKeyring(t)
		db := NewTestDB(dir, other)
		err := db.Open(context.Background())
		if err == nil {
			db.Close(context.Background())
		}
		if node.KindOf(err) != node.Permission {
			t.Fatalf("got %v, want Permission", err)
		}
	})
}

func TestOpen_ErrNewerSchema(t *testing.T) {
	db := MustOpenDB(t)
	err := db.bdb.Update(func(txn *badger.Txn) error {
		return txn.Set(keySchema, binary.BigEndian.AppendUint32(nil, SchemaVersion+1))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	again := NewTestDB(db.Dir, db.Keyring)
	err = again.Open(context.Background())
	if err == nil {
		again.Close(context.Background())
	}
	if node.KindOf(err) != node.Invalid {
		t.Fatalf("got %v, want Invalid", err)
	}
}

func TestOpen_SchemaWritten(t *testing.T) {
	db := MustOpenDB(t)
	var got uint32
	err := db.bdb.View(func(txn *badger.Txn) error {
		item, err := txn.Get(keySchema)
		if err != nil {
			return err
		}
		return item.Value(func(v []byte) error { got = binary.BigEndian.Uint32(v); return nil })
	})
	if err != nil {
		t.Fatal(err)
	}
	if got != SchemaVersion {
		t.Fatalf("got schema %d, want %d", got, SchemaVersion)
	}
}

// rawRecord returns the stored current record of a case.
func rawRecord(tb testing.TB, db *DB, code string) recordHeader {
	tb.Helper()
	var h recordHeader
	err := db.bdb.View(func(txn *badger.Txn) error {
		item, err := txn.Get(caseKey(nil, code))
		if err != nil {
			return err
		}
		v, err := item.ValueCopy(nil)
		if err != nil {
			return err
		}
		h, err = parseRecord(v)
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	return h
}

// rawWrappedKey returns the stored wrapped identity key of a case, or nil.
func rawWrappedKey(tb testing.TB, db *DB, code string) []byte {
	tb.Helper()
	return rawRecord(tb, db, code).wrapped
}

func TestEraseIdentity_KEKRotated(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	MustPut(t, db, node.CreateOnly, testCases(0, 20)...)
	edited := testCase(5)
	edited.Identity.Phone = "+000 555 9999999"
	MustPut(t, db, node.Upsert, edited)
	erased := testCase(3).Code
	oldWrapped := rawWrappedKey(t, db, erased)
	otherOld := rawWrappedKey(t, db, testCase(4).Code)
	if _, err := db.keks.unwrapCaseKey(oldWrapped, erased); err != nil {
		t.Fatalf("before erase: %v", err)
	}

	if err := db.EraseIdentity(ctx, erased, "officer"); err != nil {
		t.Fatal(err)
	}
	if gens := db.Keyring.kekGens(); len(gens) != 1 || gens[0] != 2 {
		t.Fatalf("got KEK generations %v, want [2]", gens)
	}
	// The old wrapped key (as badger's old files may still hold it) does
	// not unwrap, neither in this process nor from keys.json.
	kr, err := OpenKeyring(db.Dir, testPassphrase)
	if err != nil {
		t.Fatal(err)
	}
	for name, k := range map[string]*keks{"InMemory": &db.keks, "Reopened": {kr: kr}} {
		if _, err := k.unwrapCaseKey(oldWrapped, erased); !errors.Is(err, errKeyUnavailable) {
			t.Fatalf("%s: got %v, want the old generation gone", name, err)
		}
	}
	if h := rawRecord(t, db, erased); h.wrapped != nil || h.sealed != nil {
		t.Fatal("got a wrapped key or a sealed identity left in the erased case's record")
	}
	// Other cases were re-wrapped and keep their identity.
	if !bytes.Equal(otherOld, rawWrappedKey(t, db, testCase(4).Code)) {
		gen, _, _, _ := parseWrappedKey(rawWrappedKey(t, db, testCase(4).Code))
		if gen != 2 {
			t.Fatalf("got generation %d, want 2", gen)
		}
	} else {
		t.Fatal("another case's wrapped key was not re-wrapped")
	}
	db = MustReopenDB(t, db)
	for i := range 20 {
		c, err := db.Case(ctx, testCase(i).Code, true)
		if err != nil {
			t.Fatal(err)
		}
		if i == 3 {
			if !c.Identity.IsZero() || !c.IdentityErased {
				t.Fatal("erased identity is back after reopening")
			}
			continue
		}
		if c.Identity.FullName != fakeName(i) {
			t.Fatalf("case %d: got its identity lost", i)
		}
	}
	// Earlier versions of other cases still open under the new generation.
	hist, err := db.CaseHistory(ctx, edited.Code, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 2 || hist[0].Identity.FullName != fakeName(5) || hist[0].IdentityErased || hist[1].Identity.Phone != "+000 555 9999999" {
		t.Fatal("got another case's history identity lost after the rotation")
	}
	// Erasing a second case rotates again.
	if err := db.EraseIdentity(ctx, testCase(4).Code, "officer"); err != nil {
		t.Fatal(err)
	}
	if gens := db.Keyring.kekGens(); len(gens) != 1 || gens[0] != 3 {
		t.Fatalf("got KEK generations %v, want [3]", gens)
	}
}

// TestEraseIdentity_Crash simulates a crash after each step of an erase and
// checks that the next Open finishes it.
func TestEraseIdentity_Crash(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name       string
		steps      func(t *testing.T, db *DB, code string)
		wantErased bool
	}{
		{"AfterNewKEK", func(t *testing.T, db *DB, code string) {
			if _, err := db.Keyring.addKEK(); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"AfterEraseVersions", func(t *testing.T, db *DB, code string) {
			if _, err := db.Keyring.addKEK(); err != nil {
				t.Fatal(err)
			}
			if err := db.eraseVersions(code); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"AfterPartialRewrap", func(t *testing.T, db *DB, code string) {
			if _, err := db.Keyring.addKEK(); err != nil {
				t.Fatal(err)
			}
			if err := db.eraseVersions(code); err != nil {
				t.Fatal(err)
			}
			// Re-wrap one other case only.
			other := testCase(0).Code
			key, err := db.keks.unwrapCaseKey(rawWrappedKey(t, db, other), other)
			if err != nil {
				t.Fatal(err)
			}
			gen, kek, err := db.keks.current()
			if err != nil {
				t.Fatal(err)
			}
			h := rawRecord(t, db, other)
			h.wrapped = wrapCaseKey(nil, gen, kek, key, randomBytes(gcmNonceLen), other, nil)
			if err := db.bdb.Update(func(txn *badger.Txn) error { return txn.Set(caseKey(nil, other), appendRecord(nil, &h)) }); err != nil {
				t.Fatal(err)
			}
		}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			db := MustOpenDB(t)
			MustPut(t, db, node.CreateOnly, testCases(0, 10)...)
			code := testCase(2).Code
			oldWrapped := rawWrappedKey(t, db, code)
			tt.steps(t, db, code)
			if gens := db.Keyring.kekGens(); len(gens) != 2 {
				t.Fatalf("got KEK generations %v, want 2 after the crash", gens)
			}
			db = MustReopenDB(t, db) // Open finishes the rotation.
			if gens := db.Keyring.kekGens(); len(gens) != 1 || gens[0] != 2 {
				t.Fatalf("got KEK generations %v, want [2]", gens)
			}
			if _, err := db.keks.unwrapCaseKey(oldWrapped, code); !errors.Is(err, errKeyUnavailable) {
				t.Fatalf("got %v, want the old generation gone", err)
			}
			for i := range 10 {
				c, err := db.Case(ctx, testCase(i).Code, true)
				if err != nil {
					t.Fatal(err)
				}
				wantErased := tt.wantErased && i == 2
				if c.IdentityErased != wantErased || c.Identity.IsZero() != wantErased {
					t.Fatalf("case %d: got erased %v, want %v", i, c.IdentityErased, wantErased)
				}
			}
			if !tt.wantErased {
				// The erase that never returned can be run again.
				if err := db.EraseIdentity(ctx, code, "officer"); err != nil {
					t.Fatal(err)
				}
				c, err := db.Case(ctx, code, true)
				if err != nil {
					t.Fatal(err)
				}
				if !c.IdentityErased || !c.Identity.IsZero() {
					t.Fatal("identity not erased")
				}
			}
		})
	}
}

func TestEraseIdentity_NoIdentity(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	c := testCase(1)
	c.Identity = node.Identity{}
	MustPut(t, db, node.CreateOnly, c)
	if err := db.EraseIdentity(ctx, c.Code, "officer"); err != nil {
		t.Fatal(err)
	}
	got, err := db.Case(ctx, c.Code, true)
	if err != nil {
		t.Fatal(err)
	}
	if !got.IdentityErased {
		t.Fatal("got not erased, want erased")
	}
	if gens := db.Keyring.kekGens(); len(gens) != 1 || gens[0] != 1 {
		t.Fatalf("got KEK generations %v, want [1]: nothing to shred", gens)
	}
	// A new identity given later is stored under a new key.
	c2 := testCase(1)
	MustPut(t, db, node.Upsert, c2)
	got, err = db.Case(ctx, c.Code, true)
	if err != nil {
		t.Fatal(err)
	}
	if got.IdentityErased || got.Identity.FullName != fakeName(1) {
		t.Fatal("got no identity after an update that gives one")
	}
}
