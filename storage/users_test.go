package storage

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/ctfed/ctfed/node"
)

const testPassword = "Tr0ub4dor&3-long"

// MustCreateUser creates a user with testPassword and fails the test on
// error.
func MustCreateUser(tb testing.TB, db *DB, name string, role node.Role) *node.User {
	tb.Helper()
	u, err := db.CreateUser(context.Background(), name, role, testPassword, "root")
	if err != nil {
		tb.Fatal(err)
	}
	return u
}

// settableClock is a clock for DB.Now that tests move forward.
type settableClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *settableClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *settableClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// auditActions returns the action and subject of every audit entry.
func auditActions(tb testing.TB, db *DB) []string {
	tb.Helper()
	var out []string
	err := db.AuditEntries(context.Background(), 0, func(e *node.AuditEntry) error {
		out = append(out, e.Actor+" "+e.Action+" "+e.Subject)
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// rawStoreContains reports whether any key or value of the store holds s.
func rawStoreContains(tb testing.TB, db *DB, s string) bool {
	tb.Helper()
	found := false
	err := db.bdb.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			if bytes.Contains(it.Item().Key(), []byte(s)) || bytes.Contains(v, []byte(s)) {
				found = true
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return found
}

func TestPasswordHash(t *testing.T) {
	h := hashPassword(testPassword, defaultPasswordParams)
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("got hash %q, want the PHC form with the default parameters", h)
	}
	if h2 := hashPassword(testPassword, defaultPasswordParams); h2 == h {
		t.Fatal("got the same hash twice, want a fresh salt per hash")
	}
	for _, tc := range []struct {
		name, password string
		ok             bool
	}{
		{"OK", testPassword, true},
		{"Wrong", testPassword + "x", false},
		{"Empty", "", false},
		{"Prefix", testPassword[:len(testPassword)-1], false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, outdated, err := verifyPassword(h, tc.password)
			if err != nil {
				t.Fatal(err)
			}
			if ok != tc.ok || outdated {
				t.Fatalf("got ok %v outdated %v, want ok %v outdated false", ok, outdated, tc.ok)
			}
		})
	}
	t.Run("Outdated", func(t *testing.T) {
		old := defaultPasswordParams
		old.Time = 1
		ok, outdated, err := verifyPassword(hashPassword(testPassword, old), testPassword)
		if err != nil || !ok || !outdated {
			t.Fatalf("got ok %v outdated %v err %v, want ok and outdated", ok, outdated, err)
		}
	})
}

func TestParsePasswordHash(t *testing.T) {
	good := hashPassword("x", passwordParams{Time: 1, MemKiB: 64, Threads: 1, SaltLen: 16, KeyLen: 32})
	parts := strings.Split(good, "$")
	with := func(i int, v string) string {
		p := append([]string(nil), parts...)
		p[i] = v
		return strings.Join(p, "$")
	}
	for _, tc := range []struct {
		name, enc string
		ok        bool
	}{
		{"OK", good, true},
		{"Empty", "", false},
		{"Argon2i", with(1, "argon2i"), false},
		{"Version", with(2, "v=16"), false},
		{"HugeMemory", with(3, "m=4194304,t=1,p=1"), false},
		{"ManyIterations", with(3, "m=64,t=1000,p=1"), false},
		{"ZeroLanes", with(3, "m=64,t=1,p=0"), false},
		{"NoParams", with(3, ""), false},
		{"BadSalt", with(4, "!!"), false},
		{"ShortKey", with(5, "AAAA"), false},
		{"ExtraField", good + "$x", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, _, err := parsePasswordHash(tc.enc)
			if got := err == nil; got != tc.ok {
				t.Fatalf("got ok %v (%v), want %v", got, err, tc.ok)
			}
		})
	}
}

func FuzzParsePasswordHash(f *testing.F) {
	f.Add(hashPassword("x", passwordParams{Time: 1, MemKiB: 64, Threads: 1, SaltLen: 16, KeyLen: 32}))
	f.Add("$argon2id$v=19$m=64,t=1,p=1$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA")
	f.Add("$argon2id$v=19$m=99999999,t=1,p=1$$")
	f.Fuzz(func(t *testing.T, enc string) {
		p, salt, key, err := parsePasswordHash(enc)
		if err != nil {
			return
		}
		if p.MemKiB > maxPasswordMemKiB || p.Time > maxPasswordTime || p.Threads > maxPasswordThreads || len(salt) == 0 || len(key) == 0 {
			t.Fatalf("accepted out-of-bounds parameters %+v", p)
		}
	})
}

func TestDB_CreateUser(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	u := MustCreateUser(t, db, "ana", node.RoleAdmin)
	if u.PasswordHash != "" || u.Name != "ana" || u.Role != node.RoleAdmin || u.CreatedBy != "root" || u.Created.IsZero() {
		t.Fatalf("got %+v, want ana, admin, created by root, no hash", u)
	}
	for _, tc := range []struct {
		name, user, password, by string
		role                     node.Role
		kind                     node.Kind
	}{
		{"OK", "bo.b-2_x", testPassword, "ana", node.RoleCaseworker, node.Unknown},
		{"Taken", "ana", testPassword, "ana", node.RoleAnalyst, node.Conflict},
		{"UpperCase", "Ana", testPassword, "ana", node.RoleAnalyst, node.Invalid},
		{"Colon", "token:x", testPassword, "ana", node.RoleAnalyst, node.Invalid},
		{"LeadingDot", ".x", testPassword, "ana", node.RoleAnalyst, node.Invalid},
		{"EmptyName", "", testPassword, "ana", node.RoleAnalyst, node.Invalid},
		{"LongName", strings.Repeat("a", node.MaxUserNameLen+1), testPassword, "ana", node.RoleAnalyst, node.Invalid},
		{"BadRole", "cid", testPassword, "ana", "root", node.Invalid},
		{"ShortPassword", "cid", "short", "ana", node.RoleAnalyst, node.Invalid},
		{"LongPassword", "cid", strings.Repeat("x", node.MaxPasswordLen+1), "ana", node.RoleAnalyst, node.Invalid},
		{"NoAuthor", "cid", testPassword, "", node.RoleAnalyst, node.Invalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := db.CreateUser(ctx, tc.user, tc.role, tc.password, tc.by)
			if got := node.KindOf(err); got != tc.kind {
				t.Fatalf("got %v (%v), want %v", got, err, tc.kind)
			}
			if err != nil && strings.Contains(err.Error(), tc.password) {
				t.Fatalf("got error %q, want it without the password", err)
			}
		})
	}
	users, err := db.Users(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, u := range users {
		if u.PasswordHash != "" {
			t.Fatalf("got a password hash for %s, want none", u.Name)
		}
		names = append(names, u.Name+"/"+string(u.Role))
	}
	if got, want := strings.Join(names, ","), "ana/admin,bo.b-2_x/caseworker"; got != want {
		t.Fatalf("got users %s, want %s", got, want)
	}
	if _, err := db.User(ctx, "nobody"); node.KindOf(err) != node.NotFound {
		t.Fatalf("got %v, want NotFound", err)
	}
	if rawStoreContains(t, db, testPassword) {
		t.Fatal("got the password in the store, want only its hash")
	}
	got := auditActions(t, db)
	want := []string{"root user.create ana", "ana user.create bo.b-2_x"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("got audit %q, want %q", got, want)
	}
}

func TestDB_Authenticate(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	MustCreateUser(t, db, "ana", node.RoleAdmin)
	MustCreateUser(t, db, "cw", node.RoleCaseworker)
	MustCreateUser(t, db, "off", node.RoleAnalyst)
	if err := db.SetUserDisabled(ctx, "off", true, "ana"); err != nil {
		t.Fatal(err)
	}
	var msg string
	for _, tc := range []struct {
		name, user, password string
		kind                 node.Kind
	}{
		{"OK", "cw", testPassword, node.Unknown},
		{"WrongPassword", "cw", testPassword + "!", node.Permission},
		{"UnknownUser", "nobody", testPassword, node.Permission},
		{"InvalidName", "No Body", testPassword, node.Permission},
		{"Disabled", "off", testPassword, node.Permission},
		{"Empty", "", "", node.Permission},
		{"HugePassword", "cw", strings.Repeat("x", 1<<20), node.Permission},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := db.Authenticate(ctx, tc.user, tc.password)
			if got := node.KindOf(err); got != tc.kind {
				t.Fatalf("got %v (%v), want %v", got, err, tc.kind)
			}
			if err == nil {
				if u.Name != tc.user || u.PasswordHash != "" {
					t.Fatalf("got %+v, want %s without hash", u, tc.user)
				}
				return
			}
			if msg == "" {
				msg = err.Error()
			}
			if err.Error() != msg {
				t.Fatalf("got message %q, want the same message %q for every refusal", err, msg)
			}
		})
	}

	t.Run("Rehash", func(t *testing.T) {
		old := defaultPasswordParams
		old.Time = 1
		_, err := db.changeUser(ctx, "test", "cw", "test", false, func(_ *badger.Txn, u *node.User) (bool, error) {
			u.PasswordHash = hashPassword(testPassword, old)
			return true, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Authenticate(ctx, "cw", testPassword); err != nil {
			t.Fatal(err)
		}
		u, err := db.readUser(ctx, "test", "cw")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(u.PasswordHash, "t=2,") {
			t.Fatalf("got hash parameters %q, want the current ones after a login", u.PasswordHash[:30])
		}
	})
}

func TestDB_ChangeUser(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	MustCreateUser(t, db, "ana", node.RoleAdmin)
	MustCreateUser(t, db, "cw", node.RoleCaseworker)

	session := func(t *testing.T) string {
		t.Helper()
		id, _, err := db.CreateSession(ctx, "cw", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	ended := func(t *testing.T, id string) {
		t.Helper()
		if _, err := db.Session(ctx, id); node.KindOf(err) != node.NotFound {
			t.Fatalf("got %v, want the session ended (NotFound)", err)
		}
	}

	t.Run("Disable", func(t *testing.T) {
		id := session(t)
		if err := db.SetUserDisabled(ctx, "cw", true, "ana"); err != nil {
			t.Fatal(err)
		}
		ended(t, id)
		if _, _, err := db.CreateSession(ctx, "cw", time.Hour); node.KindOf(err) != node.Permission {
			t.Fatalf("got %v, want Permission for a disabled user's session", err)
		}
		if err := db.SetUserDisabled(ctx, "cw", false, "ana"); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Authenticate(ctx, "cw", testPassword); err != nil {
			t.Fatalf("got %v after enabling, want a login", err)
		}
	})
	t.Run("Password", func(t *testing.T) {
		id := session(t)
		if err := db.SetPassword(ctx, "cw", "another long password", "cw"); err != nil {
			t.Fatal(err)
		}
		ended(t, id)
		if _, err := db.Authenticate(ctx, "cw", testPassword); node.KindOf(err) != node.Permission {
			t.Fatalf("got %v, want the old password refused", err)
		}
		if _, err := db.Authenticate(ctx, "cw", "another long password"); err != nil {
			t.Fatal(err)
		}
		if err := db.SetPassword(ctx, "cw", "short", "cw"); node.KindOf(err) != node.Invalid {
			t.Fatalf("got %v, want Invalid", err)
		}
	})
	t.Run("Role", func(t *testing.T) {
		id := session(t)
		if err := db.SetUserRole(ctx, "cw", node.RoleAnalyst, "ana"); err != nil {
			t.Fatal(err)
		}
		ended(t, id)
		if u, err := db.User(ctx, "cw"); err != nil || u.Role != node.RoleAnalyst || u.UpdatedBy != "ana" {
			t.Fatalf("got %+v, %v, want analyst updated by ana", u, err)
		}
		if err := db.SetUserRole(ctx, "cw", "boss", "ana"); node.KindOf(err) != node.Invalid {
			t.Fatalf("got %v, want Invalid", err)
		}
	})
	t.Run("LastAdmin", func(t *testing.T) {
		if err := db.SetUserDisabled(ctx, "ana", true, "ana"); node.KindOf(err) != node.Conflict {
			t.Fatalf("got %v, want Conflict for disabling the last admin", err)
		}
		if err := db.SetUserRole(ctx, "ana", node.RoleCaseworker, "ana"); node.KindOf(err) != node.Conflict {
			t.Fatalf("got %v, want Conflict for demoting the last admin", err)
		}
		MustCreateUser(t, db, "ann", node.RoleAdmin)
		if err := db.SetUserDisabled(ctx, "ana", true, "ann"); err != nil {
			t.Fatalf("got %v, want a second admin to disable the first", err)
		}
	})
	t.Run("NotFound", func(t *testing.T) {
		for name, err := range map[string]error{
			"disable":  db.SetUserDisabled(ctx, "nobody", true, "ana"),
			"role":     db.SetUserRole(ctx, "nobody", node.RoleAuditor, "ana"),
			"password": db.SetPassword(ctx, "nobody", testPassword, "ana"),
		} {
			if node.KindOf(err) != node.NotFound {
				t.Fatalf("%s: got %v, want NotFound", name, err)
			}
		}
	})
	got := strings.Join(auditActions(t, db), "|")
	for _, want := range []string{"ana user.disable cw", "ana user.enable cw", "cw user.password cw", "ana user.role cw", "ann user.disable ana"} {
		if !strings.Contains(got, want) {
			t.Fatalf("got audit %q, want an entry %q", got, want)
		}
	}
}

func TestDB_Sessions(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	clock := &settableClock{t: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
	db.Now = clock.Now
	MustCreateUser(t, db, "cw", node.RoleCaseworker)

	id, s, err := db.CreateSession(ctx, "cw", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if len(id) < 43 || len(s.CSRF) < 43 || s.User != "cw" || !s.Expires.Equal(clock.Now().Add(time.Hour)) {
		t.Fatalf("got id of %d bytes, session %+v, want 32-byte secrets, cw, one hour", len(id), s)
	}
	got, err := db.Session(ctx, id)
	if err != nil || got.CSRF != s.CSRF || got.User != "cw" {
		t.Fatalf("got %+v, %v, want the session", got, err)
	}
	if rawStoreContains(t, db, id) {
		t.Fatal("got the session ID in the store, want only its hash")
	}
	for _, tc := range []struct{ name, id string }{
		{"Unknown", randomSecret()},
		{"Empty", ""},
		{"Huge", strings.Repeat("a", 10000)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := db.Session(ctx, tc.id); node.KindOf(err) != node.NotFound {
				t.Fatalf("got %v, want NotFound", err)
			}
		})
	}
	t.Run("Expired", func(t *testing.T) {
		clock.Add(time.Hour)
		if _, err := db.Session(ctx, id); node.KindOf(err) != node.NotFound {
			t.Fatalf("got %v, want NotFound at expiry", err)
		}
	})
	t.Run("Delete", func(t *testing.T) {
		id, _, err := db.CreateSession(ctx, "cw", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.DeleteSession(ctx, id); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Session(ctx, id); node.KindOf(err) != node.NotFound {
			t.Fatalf("got %v, want NotFound after delete", err)
		}
		if err := db.DeleteSession(ctx, id); err != nil {
			t.Fatalf("got %v deleting twice, want nil", err)
		}
	})
	t.Run("Refused", func(t *testing.T) {
		if _, _, err := db.CreateSession(ctx, "nobody", time.Hour); node.KindOf(err) != node.Permission {
			t.Fatalf("got %v, want Permission", err)
		}
		if _, _, err := db.CreateSession(ctx, "cw", 0); node.KindOf(err) != node.Invalid {
			t.Fatalf("got %v, want Invalid", err)
		}
	})
}

func TestDB_Tokens(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	clock := &settableClock{t: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
	db.Now = clock.Now

	secret, tok, err := db.CreateToken(ctx, "sync", node.RoleCaseworker, time.Time{}, "ana")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, TokenPrefix) || len(secret) < len(TokenPrefix)+43 || len(tok.ID) != 16 || tok.Role != node.RoleCaseworker {
		t.Fatalf("got secret of %d bytes and %+v, want a 32-byte secret and a 16-digit ID", len(secret), tok)
	}
	if strings.Contains(secret, tok.ID) {
		t.Fatal("got the ID inside the secret, want it derived from the hash")
	}
	if rawStoreContains(t, db, secret) || rawStoreContains(t, db, strings.TrimPrefix(secret, TokenPrefix)) {
		t.Fatal("got the token's secret in the store, want only its hash")
	}
	got, err := db.TokenBySecret(ctx, secret)
	if err != nil || got.ID != tok.ID || got.Name != "sync" {
		t.Fatalf("got %+v, %v, want the token", got, err)
	}
	clock.Add(time.Second)
	expiring, _, err := db.CreateToken(ctx, "short", node.RoleAnalyst, clock.Now().Add(time.Hour), "ana")
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name    string
		tname   string
		role    node.Role
		expires time.Time
		by      string
	}{
		{"BadName", "Sync Job", node.RoleAnalyst, time.Time{}, "ana"},
		{"BadRole", "x", "boss", time.Time{}, "ana"},
		{"Past", "x", node.RoleAnalyst, clock.Now().Add(-time.Second), "ana"},
		{"NoAuthor", "x", node.RoleAnalyst, time.Time{}, ""},
	} {
		t.Run("Create"+tc.name, func(t *testing.T) {
			if _, _, err := db.CreateToken(ctx, tc.tname, tc.role, tc.expires, tc.by); node.KindOf(err) != node.Invalid {
				t.Fatalf("got %v, want Invalid", err)
			}
		})
	}

	t.Run("Expired", func(t *testing.T) {
		if _, err := db.TokenBySecret(ctx, expiring); err != nil {
			t.Fatal(err)
		}
		clock.Add(time.Hour)
		if _, err := db.TokenBySecret(ctx, expiring); node.KindOf(err) != node.Permission {
			t.Fatalf("got %v, want Permission for an expired token", err)
		}
	})
	t.Run("Revoke", func(t *testing.T) {
		if err := db.RevokeToken(ctx, tok.ID, "ana"); err != nil {
			t.Fatal(err)
		}
		if _, err := db.TokenBySecret(ctx, secret); node.KindOf(err) != node.Permission {
			t.Fatalf("got %v, want Permission for a revoked token", err)
		}
		if err := db.RevokeToken(ctx, tok.ID, "ana"); err != nil {
			t.Fatalf("got %v revoking twice, want nil", err)
		}
		for _, id := range []string{"0000000000000000", "xyz", tok.ID[:15], ""} {
			if err := db.RevokeToken(ctx, id, "ana"); node.KindOf(err) != node.NotFound {
				t.Fatalf("revoke %q: got %v, want NotFound", id, err)
			}
		}
	})
	t.Run("Unknown", func(t *testing.T) {
		for _, s := range []string{"", TokenPrefix, TokenPrefix + randomSecret(), strings.Repeat("x", 1000), tok.ID} {
			if _, err := db.TokenBySecret(ctx, s); node.KindOf(err) != node.Permission {
				t.Fatalf("got %v, want Permission", err)
			}
		}
	})
	t.Run("List", func(t *testing.T) {
		toks, err := db.Tokens(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(toks) != 2 || toks[0].Name != "sync" || !toks[0].Revoked || toks[0].RevokedBy != "ana" || toks[1].Name != "short" {
			t.Fatalf("got %d tokens (%+v), want sync (revoked by ana) then short", len(toks), toks)
		}
	})
	audit := strings.Join(auditActions(t, db), "|")
	want := "ana token.create " + tok.ID
	if !strings.Contains(audit, want) || !strings.Contains(audit, "ana token.revoke "+tok.ID) || strings.Count(audit, "token.revoke") != 1 {
		t.Fatalf("got audit %q, want one create and one revoke of %s", audit, tok.ID)
	}
}
