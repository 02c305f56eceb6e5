package storage

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ctfed/ctfed/node"
)

func TestCreateKeyring(t *testing.T) {
	kr, recovery := MustCreateKeyring(t)
	if kr.Insecure() {
		t.Fatal("got insecure, want a wrapped keyring")
	}
	if len(recovery) != 39 || strings.Count(recovery, "-") != 7 {
		t.Fatalf("got recovery key of %d characters, want 8 groups of 4", len(recovery))
	}
	fi, err := os.Stat(filepath.Join(kr.Dir(), KeysFile))
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Fatalf("got mode %v, want 0600", got)
	}
	data, err := os.ReadFile(filepath.Join(kr.Dir(), KeysFile))
	if err != nil {
		t.Fatal(err)
	}
	for name, key := range map[string][]byte{"store": kr.storeKey(), "hmac": kr.HMACKey()} {
		if bytes.Contains(data, key) || strings.Contains(string(data), b64(key)) {
			t.Fatalf("keys.json holds the %s key in the clear", name)
		}
	}
	if len(kr.HMACKey()) != 32 || len(kr.storeKey()) != 32 || bytes.Equal(kr.HMACKey(), kr.storeKey()) {
		t.Fatal("got malformed keys")
	}
	if gens := kr.kekGens(); !slices.Equal(gens, []uint32{1}) {
		t.Fatalf("got KEK generations %v, want [1]", gens)
	}

	t.Run("ErrExists", func(t *testing.T) {
		_, _, err := CreateKeyring(kr.Dir(), testPassphrase, false)
		if node.KindOf(err) != node.Conflict {
			t.Fatalf("got %v, want Conflict", err)
		}
	})
	t.Run("ErrEmptyPassphrase", func(t *testing.T) {
		_, _, err := CreateKeyring(t.TempDir(), nil, false)
		if node.KindOf(err) != node.Invalid {
			t.Fatalf("got %v, want Invalid", err)
		}
	})
}

func b64(b []byte) string {
	s, _ := json.Marshal(b)
	return strings.Trim(string(s), `"`)
}

func TestOpenKeyring(t *testing.T) {
	kr, recovery := MustCreateKeyring(t)
	dir := kr.Dir()
	before, err := os.ReadFile(filepath.Join(dir, KeysFile))
	if err != nil {
		t.Fatal(err)
	}
	same := func(t *testing.T, got *Keyring) {
		t.Helper()
		if !bytes.Equal(got.storeKey(), kr.storeKey()) || !bytes.Equal(got.HMACKey(), kr.HMACKey()) {
			t.Fatal("got other keys than the ones created")
		}
		k1, _ := kr.kek(1)
		k2, ok := got.kek(1)
		if !ok || !bytes.Equal(k1, k2) {
			t.Fatal("got another key-encryption key")
		}
	}

	t.Run("OK", func(t *testing.T) {
		got, err := OpenKeyring(dir, testPassphrase)
		if err != nil {
			t.Fatal(err)
		}
		same(t, got)
	})
	t.Run("Recovery", func(t *testing.T) {
		for _, rk := range []string{recovery, strings.ToLower(recovery), strings.ReplaceAll(recovery, "-", " ")} {
			got, err := OpenKeyringRecovery(dir, rk)
			if err != nil {
				t.Fatal(err)
			}
			same(t, got)
		}
	})
	for _, tt := range []struct {
		name string
		open func() error
		want node.Kind
	}{
		{"ErrWrongPassphrase", func() error { _, err := OpenKeyring(dir, []byte("wrong")); return err }, node.Permission},
		{"ErrNoPassphrase", func() error { _, err := OpenKeyring(dir, nil); return err }, node.Permission},
		{"ErrWrongRecovery", func() error {
			_, err := OpenKeyringRecovery(dir, formatRecoveryKey(make([]byte, recoveryKeyLen)))
			return err
		}, node.Permission},
		{"ErrMalformedRecovery", func() error { _, err := OpenKeyringRecovery(dir, "not-a-key"); return err }, node.Invalid},
		{"ErrNotNodeDir", func() error { _, err := OpenKeyring(t.TempDir(), testPassphrase); return err }, node.NotFound},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.open(); node.KindOf(err) != tt.want {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
	after, err := os.ReadFile(filepath.Join(dir, KeysFile))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Fatal("opening the keyring changed keys.json")
	}
}

func TestOpenKeyring_ErrDamaged(t *testing.T) {
	kr, _ := MustCreateKeyring(t)
	path := filepath.Join(kr.Dir(), KeysFile)
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(good, &doc); err != nil {
		t.Fatal(err)
	}
	edit := func(f func(map[string]any)) []byte {
		d := map[string]any{}
		for k, v := range doc {
			d[k] = v
		}
		f(d)
		out, _ := json.Marshal(d)
		return out
	}
	for _, tt := range []struct {
		name string
		data []byte
	}{
		{"Empty", nil},
		{"NotJSON", []byte("hello")},
		{"NewerVersion", edit(func(d map[string]any) { d["version"] = 2 })},
		{"HugeMemory", edit(func(d map[string]any) {
			d["kdf"] = map[string]any{"alg": "argon2id", "time": 1, "memory_kib": 1 << 30, "threads": 1, "salt": "AAAAAAAAAAAAAAAAAAAAAA=="}
		})},
		{"NoKDF", edit(func(d map[string]any) { delete(d, "kdf") })},
		{"ShortWrap", edit(func(d map[string]any) { d["passphrase_wrap"] = "AAAA" })},
		{"InsecureNoKeys", []byte(`{"version":1,"insecure":true}`)},
		{"InsecureShortKeys", []byte(`{"version":1,"insecure":true,"plain_keys":{"store":"AAAA","hmac":"AAAA","kek":[]}}`)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := os.WriteFile(path, tt.data, 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := OpenKeyring(kr.Dir(), testPassphrase); node.KindOf(err) != node.Invalid {
				t.Fatalf("got %v, want Invalid", err)
			}
		})
	}
}

func TestKeyring_Insecure(t *testing.T) {
	dir := t.TempDir()
	kr, recovery, err := CreateKeyring(dir, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	if !kr.Insecure() || recovery != "" {
		t.Fatalf("got insecure %v recovery %q, want insecure and no recovery key", kr.Insecure(), recovery)
	}
	data, err := os.ReadFile(filepath.Join(dir, KeysFile))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct{ Insecure bool }
	if err := json.Unmarshal(data, &doc); err != nil || !doc.Insecure {
		t.Fatalf("got %s, want \"insecure\": true", data)
	}
	for _, pass := range [][]byte{nil, []byte("anything")} {
		got, err := OpenKeyring(dir, pass)
		if err != nil {
			t.Fatal(err)
		}
		if !got.Insecure() || !bytes.Equal(got.storeKey(), kr.storeKey()) {
			t.Fatal("got other keys than the ones created")
		}
	}
	if err := kr.ChangePassphrase([]byte("x")); node.KindOf(err) != node.Invalid {
		t.Fatalf("ChangePassphrase: got %v, want Invalid", err)
	}
	// An insecure node still works as a store.
	db := MustOpenDBAt(t, dir, kr)
	MustPut(t, db, node.CreateOnly, testCase(1))
}

func TestKeyring_Save(t *testing.T) {
	kr, recovery := MustCreateKeyring(t)
	dir := kr.Dir()
	kr.SetExtra("libp2p", []byte("fake identity key bytes"))
	kr.SetExtra("x25519", []byte{1, 2, 3})
	if err := kr.Save(); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{KeysFile}) {
		t.Fatalf("got files %v, want only %s (no temporary file left)", names, KeysFile)
	}
	fi, err := os.Stat(filepath.Join(dir, KeysFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("got mode %v, want 0600", fi.Mode().Perm())
	}
	data, _ := os.ReadFile(filepath.Join(dir, KeysFile))
	if bytes.Contains(data, []byte("fake identity key bytes")) || strings.Contains(string(data), b64([]byte("fake identity key bytes"))) {
		t.Fatal("keys.json holds an extra key in the clear")
	}

	for name, open := range map[string]func() (*Keyring, error){
		"Passphrase": func() (*Keyring, error) { return OpenKeyring(dir, testPassphrase) },
		"Recovery":   func() (*Keyring, error) { return OpenKeyringRecovery(dir, recovery) },
	} {
		got, err := open()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		v, ok := got.Extra("libp2p")
		if !ok || string(v) != "fake identity key bytes" {
			t.Fatalf("%s: got extra %q %v, want it saved", name, v, ok)
		}
		if _, ok := got.Extra("missing"); ok {
			t.Fatalf("%s: got an extra key that was never set", name)
		}
		if !bytes.Equal(got.storeKey(), kr.storeKey()) {
			t.Fatalf("%s: Save changed the store key", name)
		}
	}

	// A temporary file left by a crash during Save does not matter.
	if err := os.WriteFile(filepath.Join(dir, "."+KeysFile+".tmp123"), []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenKeyring(dir, testPassphrase); err != nil {
		t.Fatal(err)
	}
}

func TestKeyring_ChangePassphrase(t *testing.T) {
	kr, recovery := MustCreateKeyring(t)
	newPass := []byte("a new passphrase")
	if err := kr.ChangePassphrase(newPass); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenKeyring(kr.Dir(), testPassphrase); node.KindOf(err) != node.Permission {
		t.Fatalf("old passphrase: got %v, want Permission", err)
	}
	got, err := OpenKeyring(kr.Dir(), newPass)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.storeKey(), kr.storeKey()) {
		t.Fatal("got other keys after a passphrase change")
	}
	if _, err := OpenKeyringRecovery(kr.Dir(), recovery); err != nil {
		t.Fatalf("recovery key after a passphrase change: %v", err)
	}
	if err := kr.ChangePassphrase(nil); node.KindOf(err) != node.Invalid {
		t.Fatalf("empty passphrase: got %v, want Invalid", err)
	}
}

func TestRecoveryKey_RoundTrip(t *testing.T) {
	for range 20 {
		rk := randomBytes(recoveryKeyLen)
		got, err := parseRecoveryKey(formatRecoveryKey(rk))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, rk) {
			t.Fatalf("got %x, want %x", got, rk)
		}
	}
}

func FuzzParseKeyFile(f *testing.F) {
	dir := f.TempDir()
	if _, _, err := CreateKeyring(dir, testPassphrase, false); err != nil {
		f.Fatal(err)
	}
	good, err := os.ReadFile(filepath.Join(dir, KeysFile))
	if err != nil {
		f.Fatal(err)
	}
	insecureDir := f.TempDir()
	if _, _, err := CreateKeyring(insecureDir, nil, true); err != nil {
		f.Fatal(err)
	}
	insecure, err := os.ReadFile(filepath.Join(insecureDir, KeysFile))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(insecure)
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"version":1,"kdf":{"alg":"argon2id","time":4294967295,"memory_kib":4294967295,"threads":255}}`))
	f.Add([]byte(`{"version":1,"insecure":true,"plain_keys":{"kek":[{"gen":0}]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		kf, err := parseKeyFile(data)
		if err != nil {
			return
		}
		if kf.Insecure {
			var kr Keyring
			kr.setKeySet(kf.Plain) // must not panic
			return
		}
		k := kf.KDF
		if k.Time > maxKDFTime || k.MemoryKiB > maxKDFMemoryKiB || k.Threads < 1 {
			t.Fatalf("accepted argon2id parameters %+v", k.kdfParams)
		}
	})
}
