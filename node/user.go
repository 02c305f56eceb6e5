package node

import (
	"context"
	"time"
	"unicode/utf8"
)

// Role is what a person (or an API token) may do at a node. Roles are local
// to the node; they are not the federation roles of a member
// (RoleContributor, RoleQuerier).
type Role string

// The roles of a node's users.
const (
	// RoleAdmin manages users, API tokens, policy and backups, and sees
	// every case with its identity fields.
	RoleAdmin Role = "admin"
	// RoleCaseworker records and edits cases; sees the identity fields of
	// the cases assigned to them, and of others only by breaking the glass.
	RoleCaseworker Role = "caseworker"
	// RoleAnalyst reads the node's own exact statistics and runs federated
	// queries when the node is a querier; never sees a record.
	RoleAnalyst Role = "analyst"
	// RoleAuditor reads the audit log.
	RoleAuditor Role = "auditor"
)

// Roles returns every role, in the order forms list them.
func Roles() []Role { return []Role{RoleAdmin, RoleCaseworker, RoleAnalyst, RoleAuditor} }

// Valid reports whether r is one of Roles.
func (r Role) Valid() bool {
	switch r {
	case RoleAdmin, RoleCaseworker, RoleAnalyst, RoleAuditor:
		return true
	}
	return false
}

// ParseRole returns the role named s. Returns Invalid for any other name.
func ParseRole(s string) (Role, error) {
	if r := Role(s); r.Valid() {
		return r, nil
	}
	return "", E("parse role", Invalid, "%q is not a role (admin, caseworker, analyst or auditor)", printable(s, 32))
}

// Limits on user names and passwords.
const (
	MaxUserNameLen = 64
	MinPasswordLen = 10
	MaxPasswordLen = 1024
)

// CheckUserName returns Invalid unless name is 1–MaxUserNameLen bytes of
// lower-case ASCII letters, digits, '.', '_' and '-', starting with a letter
// or a digit. User names are what Case.Caseworker holds and what the audit
// log calls the actor; the rule keeps them printable and free of ':' (API
// tokens act as "token:<name>").
func CheckUserName(name string) error {
	const op = "check user name"
	if name == "" || len(name) > MaxUserNameLen {
		return E(op, Invalid, "a user name has 1 to %d characters", MaxUserNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '.' || c == '_' || c == '-') && i > 0:
		default:
			return E(op, Invalid, "a user name holds only lower-case letters, digits, '.', '_' and '-', and starts with a letter or a digit")
		}
	}
	return nil
}

// CheckPassword returns Invalid for a password shorter than MinPasswordLen
// characters, longer than MaxPasswordLen bytes, or not valid UTF-8. The
// message never repeats the password.
func CheckPassword(password string) error {
	const op = "check password"
	switch {
	case !utf8.ValidString(password):
		return E(op, Invalid, "a password must be valid text")
	case utf8.RuneCountInString(password) < MinPasswordLen:
		return E(op, Invalid, "a password has at least %d characters", MinPasswordLen)
	case len(password) > MaxPasswordLen:
		return E(op, Invalid, "a password has at most %d bytes", MaxPasswordLen)
	}
	return nil
}

// TokenActor returns the name an API token acts under in the audit log and
// in Case.UpdatedBy: "token:" and the token's name.
func TokenActor(tokenName string) string { return "token:" + tokenName }

// User is a person who signs in to the node's web application.
type User struct {
	Name     string `json:"name"`
	Role     Role   `json:"role"`
	Disabled bool   `json:"disabled,omitempty"`
	// PasswordHash is the argon2id hash of the password in PHC string form
	// ("$argon2id$v=19$m=…,t=…,p=…$salt$hash"), parameters included. A
	// UserStore never returns it: it is set only inside the store.
	PasswordHash string    `json:"password_hash,omitempty"`
	Created      time.Time `json:"created"`
	CreatedBy    string    `json:"created_by"`
	Updated      time.Time `json:"updated,omitzero"`
	UpdatedBy    string    `json:"updated_by,omitempty"`
}

// Session is a signed-in person's web session. Its ID is a random secret
// held only by the browser (the store keeps its hash); CSRF is the token
// every form of the session carries.
type Session struct {
	User    string    `json:"user"`
	CSRF    string    `json:"csrf"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
}

// Token is an API token: a random secret (shown once, when it is created;
// the store keeps only its SHA-256) that acts with one role. ID names the
// token for listing and revocation and cannot be used to authenticate.
type Token struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Role      Role      `json:"role"`
	Created   time.Time `json:"created"`
	CreatedBy string    `json:"created_by"`
	// Expires is when the token stops working; zero is never.
	Expires   time.Time `json:"expires,omitzero"`
	Revoked   bool      `json:"revoked,omitempty"`
	RevokedAt time.Time `json:"revoked_at,omitzero"`
	RevokedBy string    `json:"revoked_by,omitempty"`
}

// Valid reports whether the token may be used at now: not revoked and not
// expired.
func (t *Token) Valid(now time.Time) bool {
	return !t.Revoked && (t.Expires.IsZero() || now.Before(t.Expires))
}

// UserStore keeps a node's users, their web sessions and the API tokens.
// Passwords are kept only as argon2id hashes, session IDs and token secrets
// only as SHA-256 hashes. Every change to a user or a token is written to
// the node's audit log with by as the actor.
type UserStore interface {
	// CreateUser stores a new, enabled user, as by. Returns Invalid for a
	// bad name (CheckUserName), role or password (CheckPassword), Conflict
	// when the name is taken.
	CreateUser(ctx context.Context, name string, role Role, password, by string) (*User, error)
	// User returns the user named name, without its password hash.
	// Returns NotFound.
	User(ctx context.Context, name string) (*User, error)
	// Users returns every user, by name, without password hashes.
	Users(ctx context.Context) ([]*User, error)
	// SetUserDisabled disables or enables a user, as by. Disabling ends the
	// user's sessions. Returns NotFound.
	SetUserDisabled(ctx context.Context, name string, disabled bool, by string) error
	// SetUserRole changes a user's role, as by, and ends the user's
	// sessions. Returns Invalid for a bad role, NotFound.
	SetUserRole(ctx context.Context, name string, role Role, by string) error
	// SetPassword replaces a user's password, as by, and ends the user's
	// sessions. Returns Invalid for a bad password, NotFound.
	SetPassword(ctx context.Context, name, password, by string) error
	// Authenticate checks a user's password and returns the user. Returns
	// Permission, with one message, for an unknown user, a disabled user
	// or a wrong password, and takes about as long in each case.
	Authenticate(ctx context.Context, name, password string) (*User, error)

	// CreateSession starts a session for the user, valid for ttl, and
	// returns its secret ID. Returns Invalid for a ttl ≤ 0, Permission for
	// an unknown or disabled user.
	CreateSession(ctx context.Context, user string, ttl time.Duration) (id string, s *Session, err error)
	// Session returns the session with the secret ID. Returns NotFound for
	// an unknown, ended or expired session.
	Session(ctx context.Context, id string) (*Session, error)
	// DeleteSession ends the session with the secret ID; ending an unknown
	// session is not an error.
	DeleteSession(ctx context.Context, id string) error

	// CreateToken makes an API token named name acting with role, valid
	// until expires (zero: until revoked), as by, and returns its secret,
	// which is not kept. Returns Invalid for a bad name (CheckUserName's
	// rule), role or an expiry in the past.
	CreateToken(ctx context.Context, name string, role Role, expires time.Time, by string) (secret string, t *Token, err error)
	// Tokens returns every API token, revoked ones included, by creation
	// time.
	Tokens(ctx context.Context) ([]*Token, error)
	// RevokeToken revokes the token with the ID, as by. Revoking a revoked
	// token is not an error. Returns NotFound.
	RevokeToken(ctx context.Context, id, by string) error
	// TokenBySecret returns the valid token whose secret is secret. Returns
	// Permission, with one message, for an unknown, revoked or expired
	// token.
	TokenBySecret(ctx context.Context, secret string) (*Token, error)
}

// printable returns s fit for an error message: at most n bytes, or a
// placeholder when it holds control characters or invalid UTF-8.
func printable(s string, n int) string {
	if len(s) > n || !utf8.ValidString(s) {
		return "(invalid)"
	}
	for _, r := range s {
		if isControl(r) || r == '\n' || r == '\r' || r == '\t' {
			return "(invalid)"
		}
	}
	return s
}
