package storage

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"slices"
	"sort"
	"time"

	"github.com/dgraph-io/badger/v4"
	"go.uber.org/zap"

	"github.com/ctfed/ctfed/node"
)

// User, session and API token keys (all under the reserved u/ prefix):
//
//	u/u/<name>                    a node.User (JSON) with its argon2id password hash
//	u/s/<hex SHA-256 of the ID>   a node.Session (JSON), with a TTL at its expiry
//	u/t/<hex SHA-256 of secret>   a node.Token (JSON); its ID is the first 16 hex digits
var (
	prefixUser    = []byte("u/u/")
	prefixSession = []byte("u/s/")
	prefixToken   = []byte("u/t/")
)

var _ node.UserStore = (*DB)(nil)

// Secret formats: a session ID is 32 random bytes in unpadded base64url; an
// API token is TokenPrefix and 32 random bytes in unpadded base64url.
const (
	TokenPrefix  = "ctfed_"
	secretLen    = 32
	maxSecretLen = 128
	tokenIDLen   = 16
)

// The audit actions of user and token changes.
const (
	ActionUserCreate   = "user.create"
	ActionUserDisable  = "user.disable"
	ActionUserEnable   = "user.enable"
	ActionUserRole     = "user.role"
	ActionUserPassword = "user.password"
	ActionTokenCreate  = "token.create"
	ActionTokenRevoke  = "token.revoke"
)

func userKey(name string) []byte { return append(slices.Clone(prefixUser), name...) }

func secretHash(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

func randomSecret() string {
	b := make([]byte, secretLen)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// update runs fn in a read-write transaction, again when badger reports a
// conflict with a concurrent transaction.
func (db *DB) update(fn func(txn *badger.Txn) error) error {
	for range 8 {
		err := db.bdb.Update(fn)
		if !errors.Is(err, badger.ErrConflict) {
			return err
		}
	}
	return node.E("", node.Unavailable, "too many concurrent changes; try again")
}

// kindOrInternal returns err as an *node.Error of op, Internal unless err
// already carries a kind.
func kindOrInternal(op string, err error) error {
	var ne *node.Error
	if errors.As(err, &ne) {
		return wrapOp(op, err)
	}
	return node.E(op, node.Internal, "%w", err)
}

// audit appends a user-management entry to the audit log.
func (db *DB) audit(ctx context.Context, op, actor, action, subject, detail string) error {
	if err := db.Append(ctx, &node.AuditEntry{Actor: actor, Action: action, Subject: subject, Detail: detail}); err != nil {
		return wrapOp(op, err)
	}
	return nil
}

// CreateUser implements node.UserStore.
func (db *DB) CreateUser(ctx context.Context, name string, role node.Role, password, by string) (*node.User, error) {
	const op = "storage.CreateUser"
	if err := checkUserInput(op, name, role, by); err != nil {
		return nil, err
	}
	if err := node.CheckPassword(password); err != nil {
		return nil, wrapOp(op, err)
	}
	hash := hashPassword(password, defaultPasswordParams)
	if err := db.begin(ctx, op); err != nil {
		return nil, err
	}
	u := &node.User{Name: name, Role: role, PasswordHash: hash, Created: db.Now().UTC(), CreatedBy: by}
	err := db.update(func(txn *badger.Txn) error {
		_, err := txn.Get(userKey(name))
		switch {
		case err == nil:
			return node.E("", node.Conflict, "a user named %s exists", name)
		case !errors.Is(err, badger.ErrKeyNotFound):
			return err
		}
		return setJSON(txn, userKey(name), u, 0)
	})
	db.lc.RUnlock()
	if err != nil {
		return nil, kindOrInternal(op, err)
	}
	if err := db.audit(ctx, op, by, ActionUserCreate, name, "role "+string(role)); err != nil {
		return nil, err
	}
	u.PasswordHash = ""
	return u, nil
}

func checkUserInput(op, name string, role node.Role, by string) error {
	if err := node.CheckUserName(name); err != nil {
		return wrapOp(op, err)
	}
	if !role.Valid() {
		_, err := node.ParseRole(string(role))
		return wrapOp(op, err)
	}
	if by == "" {
		return node.E(op, node.Invalid, "no author (by) given")
	}
	return nil
}

// User implements node.UserStore.
func (db *DB) User(ctx context.Context, name string) (*node.User, error) {
	const op = "storage.User"
	u, err := db.readUser(ctx, op, name)
	if err != nil {
		return nil, err
	}
	u.PasswordHash = ""
	return u, nil
}

// readUser returns the stored user with its password hash.
func (db *DB) readUser(ctx context.Context, op, name string) (*node.User, error) {
	if node.CheckUserName(name) != nil {
		return nil, node.E(op, node.NotFound, "no such user")
	}
	if err := db.begin(ctx, op); err != nil {
		return nil, err
	}
	defer db.lc.RUnlock()
	var u node.User
	var ok bool
	err := db.bdb.View(func(txn *badger.Txn) error {
		var err error
		ok, err = getJSON(txn, userKey(name), &u)
		return err
	})
	switch {
	case err != nil:
		return nil, node.E(op, node.Internal, "%w", err)
	case !ok:
		return nil, node.E(op, node.NotFound, "no user named %s", name)
	}
	return &u, nil
}

// Users implements node.UserStore.
func (db *DB) Users(ctx context.Context) ([]*node.User, error) {
	const op = "storage.Users"
	if err := db.begin(ctx, op); err != nil {
		return nil, err
	}
	defer db.lc.RUnlock()
	var out []*node.User
	err := db.bdb.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: true, Prefix: prefixUser})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var u node.User
			if err := it.Item().Value(func(b []byte) error { return json.Unmarshal(b, &u) }); err != nil {
				return err
			}
			u.PasswordHash = ""
			out = append(out, &u)
		}
		return nil
	})
	if err != nil {
		return nil, node.E(op, node.Internal, "%w", err)
	}
	return out, nil
}

// changeUser reads the user named name in a transaction, lets fn change it
// (fn returns false when there is nothing to write), writes it back and
// ends the user's sessions when endSessions is set. It reports whether it
// wrote.
func (db *DB) changeUser(ctx context.Context, op, name, by string, endSessions bool, fn func(txn *badger.Txn, u *node.User) (bool, error)) (bool, error) {
	if by == "" {
		return false, node.E(op, node.Invalid, "no author (by) given")
	}
	if node.CheckUserName(name) != nil {
		return false, node.E(op, node.NotFound, "no such user")
	}
	if err := db.begin(ctx, op); err != nil {
		return false, err
	}
	defer db.lc.RUnlock()
	var wrote bool
	err := db.update(func(txn *badger.Txn) error {
		wrote = false
		var u node.User
		ok, err := getJSON(txn, userKey(name), &u)
		switch {
		case err != nil:
			return err
		case !ok:
			return node.E("", node.NotFound, "no user named %s", name)
		}
		change, err := fn(txn, &u)
		if err != nil || !change {
			return err
		}
		u.Updated, u.UpdatedBy = db.Now().UTC(), by
		if err := setJSON(txn, userKey(name), &u, 0); err != nil {
			return err
		}
		wrote = true
		if endSessions {
			return deleteSessionsOf(txn, name)
		}
		return nil
	})
	if err != nil {
		return false, kindOrInternal(op, err)
	}
	return wrote, nil
}

// lastAdmin reports whether u is the only enabled admin.
func lastAdmin(txn *badger.Txn, u *node.User) (bool, error) {
	if u.Role != node.RoleAdmin || u.Disabled {
		return false, nil
	}
	it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: true, Prefix: prefixUser})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		var o node.User
		if err := it.Item().Value(func(b []byte) error { return json.Unmarshal(b, &o) }); err != nil {
			return false, err
		}
		if o.Name != u.Name && o.Role == node.RoleAdmin && !o.Disabled {
			return false, nil
		}
	}
	return true, nil
}

// SetUserDisabled implements node.UserStore. It returns Conflict for
// disabling the last enabled admin.
func (db *DB) SetUserDisabled(ctx context.Context, name string, disabled bool, by string) error {
	const op = "storage.SetUserDisabled"
	wrote, err := db.changeUser(ctx, op, name, by, disabled, func(txn *badger.Txn, u *node.User) (bool, error) {
		if u.Disabled == disabled {
			return false, nil
		}
		if disabled {
			if last, err := lastAdmin(txn, u); err != nil || last {
				if err == nil {
					err = node.E("", node.Conflict, "%s is the last enabled admin", name)
				}
				return false, err
			}
		}
		u.Disabled = disabled
		return true, nil
	})
	if err != nil || !wrote {
		return err
	}
	action := ActionUserEnable
	if disabled {
		action = ActionUserDisable
	}
	return db.audit(ctx, op, by, action, name, "")
}

// SetUserRole implements node.UserStore. It returns Conflict for taking
// the admin role from the last enabled admin.
func (db *DB) SetUserRole(ctx context.Context, name string, role node.Role, by string) error {
	const op = "storage.SetUserRole"
	if !role.Valid() {
		_, err := node.ParseRole(string(role))
		return wrapOp(op, err)
	}
	wrote, err := db.changeUser(ctx, op, name, by, true, func(txn *badger.Txn, u *node.User) (bool, error) {
		if u.Role == role {
			return false, nil
		}
		if last, err := lastAdmin(txn, u); err != nil || last {
			if err == nil {
				err = node.E("", node.Conflict, "%s is the last enabled admin", name)
			}
			return false, err
		}
		u.Role = role
		return true, nil
	})
	if err != nil || !wrote {
		return err
	}
	return db.audit(ctx, op, by, ActionUserRole, name, "role "+string(role))
}

// SetPassword implements node.UserStore.
func (db *DB) SetPassword(ctx context.Context, name, password, by string) error {
	const op = "storage.SetPassword"
	if err := node.CheckPassword(password); err != nil {
		return wrapOp(op, err)
	}
	hash := hashPassword(password, defaultPasswordParams)
	_, err := db.changeUser(ctx, op, name, by, true, func(_ *badger.Txn, u *node.User) (bool, error) {
		u.PasswordHash = hash
		return true, nil
	})
	if err != nil {
		return err
	}
	return db.audit(ctx, op, by, ActionUserPassword, name, "")
}

// Authenticate implements node.UserStore. A password hashed under older
// parameters than the current ones is hashed again when it matches.
func (db *DB) Authenticate(ctx context.Context, name, password string) (*node.User, error) {
	const op = "storage.Authenticate"
	denied := node.E(op, node.Permission, "wrong user name or password")
	if len(password) > node.MaxPasswordLen {
		return nil, denied
	}
	u, err := db.readUser(ctx, op, name)
	switch node.KindOf(err) {
	case node.Unknown:
	case node.NotFound:
		verifyPassword(dummyHash(), password)
		return nil, denied
	default:
		return nil, err
	}
	ok, outdated, err := verifyPassword(u.PasswordHash, password)
	if err != nil {
		db.Logger.Error("a stored password hash is unreadable", zap.String("user", u.Name))
		return nil, denied
	}
	if !ok || u.Disabled {
		return nil, denied
	}
	if outdated {
		hash := hashPassword(password, defaultPasswordParams)
		_, err := db.changeUser(ctx, op, name, name, false, func(_ *badger.Txn, v *node.User) (bool, error) {
			if v.PasswordHash != u.PasswordHash {
				return false, nil
			}
			v.PasswordHash = hash
			return true, nil
		})
		if err != nil {
			db.Logger.Warn("rehashing a password failed", zap.String("user", u.Name), zap.String("kind", node.KindOf(err).String()))
		}
	}
	u.PasswordHash = ""
	return u, nil
}

// Sessions.

func sessionKey(id string) []byte { return append(slices.Clone(prefixSession), secretHash(id)...) }

// CreateSession implements node.UserStore.
func (db *DB) CreateSession(ctx context.Context, user string, ttl time.Duration) (string, *node.Session, error) {
	const op = "storage.CreateSession"
	if ttl <= 0 {
		return "", nil, node.E(op, node.Invalid, "a session's lifetime must be positive")
	}
	if node.CheckUserName(user) != nil {
		return "", nil, node.E(op, node.Permission, "no such user")
	}
	if err := db.begin(ctx, op); err != nil {
		return "", nil, err
	}
	defer db.lc.RUnlock()
	id := randomSecret()
	now := db.Now().UTC()
	s := &node.Session{User: user, CSRF: randomSecret(), Created: now, Expires: now.Add(ttl)}
	err := db.update(func(txn *badger.Txn) error {
		var u node.User
		ok, err := getJSON(txn, userKey(user), &u)
		switch {
		case err != nil:
			return err
		case !ok || u.Disabled:
			return node.E("", node.Permission, "no such user, or the user is disabled")
		}
		// Badger's TTL counts whole seconds: round up, Session checks Expires.
		return setJSON(txn, sessionKey(id), s, ttl+time.Second)
	})
	if err != nil {
		return "", nil, kindOrInternal(op, err)
	}
	return id, s, nil
}

// Session implements node.UserStore.
func (db *DB) Session(ctx context.Context, id string) (*node.Session, error) {
	const op = "storage.Session"
	gone := node.E(op, node.NotFound, "no such session")
	if id == "" || len(id) > maxSecretLen {
		return nil, gone
	}
	if err := db.begin(ctx, op); err != nil {
		return nil, err
	}
	defer db.lc.RUnlock()
	var s node.Session
	var ok bool
	err := db.bdb.View(func(txn *badger.Txn) error {
		var err error
		ok, err = getJSON(txn, sessionKey(id), &s)
		return err
	})
	switch {
	case err != nil:
		return nil, node.E(op, node.Internal, "%w", err)
	case !ok || !db.Now().Before(s.Expires):
		return nil, gone
	}
	return &s, nil
}

// DeleteSession implements node.UserStore.
func (db *DB) DeleteSession(ctx context.Context, id string) error {
	const op = "storage.DeleteSession"
	if id == "" || len(id) > maxSecretLen {
		return nil
	}
	if err := db.begin(ctx, op); err != nil {
		return err
	}
	defer db.lc.RUnlock()
	if err := db.update(func(txn *badger.Txn) error { return txn.Delete(sessionKey(id)) }); err != nil {
		return kindOrInternal(op, err)
	}
	return nil
}

// deleteSessionsOf deletes every session of the user in txn.
func deleteSessionsOf(txn *badger.Txn, user string) error {
	var keys [][]byte
	it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: true, Prefix: prefixSession})
	for it.Rewind(); it.Valid(); it.Next() {
		var s node.Session
		if err := it.Item().Value(func(b []byte) error { return json.Unmarshal(b, &s) }); err != nil {
			it.Close()
			return err
		}
		if s.User == user {
			keys = append(keys, it.Item().KeyCopy(nil))
		}
	}
	it.Close()
	for _, k := range keys {
		if err := txn.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// API tokens.

// CreateToken implements node.UserStore.
func (db *DB) CreateToken(ctx context.Context, name string, role node.Role, expires time.Time, by string) (string, *node.Token, error) {
	const op = "storage.CreateToken"
	if err := checkUserInput(op, name, role, by); err != nil {
		return "", nil, err
	}
	now := db.Now().UTC()
	if !expires.IsZero() && !expires.After(now) {
		return "", nil, node.E(op, node.Invalid, "the token's expiry is in the past")
	}
	if err := db.begin(ctx, op); err != nil {
		return "", nil, err
	}
	secret := TokenPrefix + randomSecret()
	h := secretHash(secret)
	t := &node.Token{ID: h[:tokenIDLen], Name: name, Role: role, Created: now, CreatedBy: by}
	if !expires.IsZero() {
		t.Expires = expires.UTC()
	}
	err := db.update(func(txn *badger.Txn) error {
		return setJSON(txn, append(slices.Clone(prefixToken), h...), t, 0)
	})
	db.lc.RUnlock()
	if err != nil {
		return "", nil, kindOrInternal(op, err)
	}
	if err := db.audit(ctx, op, by, ActionTokenCreate, t.ID, "name "+name+", role "+string(role)); err != nil {
		return "", nil, err
	}
	return secret, t, nil
}

// Tokens implements node.UserStore.
func (db *DB) Tokens(ctx context.Context) ([]*node.Token, error) {
	const op = "storage.Tokens"
	if err := db.begin(ctx, op); err != nil {
		return nil, err
	}
	defer db.lc.RUnlock()
	var out []*node.Token
	err := db.bdb.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: true, Prefix: prefixToken})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var t node.Token
			if err := it.Item().Value(func(b []byte) error { return json.Unmarshal(b, &t) }); err != nil {
				return err
			}
			out = append(out, &t)
		}
		return nil
	})
	if err != nil {
		return nil, node.E(op, node.Internal, "%w", err)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out, nil
}

func isTokenID(id string) bool {
	if len(id) != tokenIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// RevokeToken implements node.UserStore.
func (db *DB) RevokeToken(ctx context.Context, id, by string) error {
	const op = "storage.RevokeToken"
	if by == "" {
		return node.E(op, node.Invalid, "no author (by) given")
	}
	if !isTokenID(id) {
		return node.E(op, node.NotFound, "no such token")
	}
	if err := db.begin(ctx, op); err != nil {
		return err
	}
	var wrote bool
	err := db.update(func(txn *badger.Txn) error {
		wrote = false
		prefix := append(slices.Clone(prefixToken), id...)
		it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: true, Prefix: prefix})
		it.Rewind()
		if !it.Valid() {
			it.Close()
			return node.E("", node.NotFound, "no token %s", id)
		}
		key := it.Item().KeyCopy(nil)
		var t node.Token
		err := it.Item().Value(func(b []byte) error { return json.Unmarshal(b, &t) })
		it.Close()
		if err != nil || t.Revoked {
			return err
		}
		t.Revoked, t.RevokedAt, t.RevokedBy = true, db.Now().UTC(), by
		wrote = true
		return setJSON(txn, key, &t, 0)
	})
	db.lc.RUnlock()
	if err != nil {
		return kindOrInternal(op, err)
	}
	if !wrote {
		return nil
	}
	return db.audit(ctx, op, by, ActionTokenRevoke, id, "")
}

// TokenBySecret implements node.UserStore.
func (db *DB) TokenBySecret(ctx context.Context, secret string) (*node.Token, error) {
	const op = "storage.TokenBySecret"
	denied := node.E(op, node.Permission, "invalid API token")
	if len(secret) <= len(TokenPrefix) || len(secret) > maxSecretLen {
		return nil, denied
	}
	if err := db.begin(ctx, op); err != nil {
		return nil, err
	}
	defer db.lc.RUnlock()
	var t node.Token
	var ok bool
	err := db.bdb.View(func(txn *badger.Txn) error {
		var err error
		ok, err = getJSON(txn, append(slices.Clone(prefixToken), secretHash(secret)...), &t)
		return err
	})
	switch {
	case err != nil:
		return nil, node.E(op, node.Internal, "%w", err)
	case !ok || !t.Valid(db.Now()):
		return nil, denied
	}
	return &t, nil
}
