package storage

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"

	"golang.org/x/crypto/argon2"
)

// passwordParams are the argon2id parameters of one password hash. They are
// stored with the hash, so that they can be raised later without breaking
// existing passwords (Authenticate rehashes a password under older
// parameters when it next succeeds).
type passwordParams struct {
	Time    uint32 // iterations
	MemKiB  uint32 // memory, in KiB
	Threads uint8
	SaltLen int
	KeyLen  int
}

// defaultPasswordParams are OWASP's recommended argon2id parameters for
// passwords (19 MiB, 2 iterations, 1 lane): a login costs about 20–40 ms of
// one core, and argonSlots bounds how many run at once.
var defaultPasswordParams = passwordParams{Time: 2, MemKiB: 19 * 1024, Threads: 1, SaltLen: 16, KeyLen: 32}

// Bounds on the parameters read from a stored hash, so that a corrupt or
// hostile record cannot make a login allocate gigabytes or spin for minutes.
const (
	maxPasswordMemKiB  = 256 * 1024
	maxPasswordTime    = 16
	maxPasswordThreads = 16
)

// argonSlots bounds the argon2id computations running at once in this
// process, so that a burst of logins cannot take all the memory.
var argonSlots = make(chan struct{}, 4)

var errBadHash = errors.New("not an argon2id password hash")

func argonKey(password string, salt []byte, p passwordParams) []byte {
	argonSlots <- struct{}{}
	defer func() { <-argonSlots }()
	return argon2.IDKey([]byte(password), salt, p.Time, p.MemKiB, p.Threads, uint32(p.KeyLen))
}

// hashPassword returns the argon2id hash of password under p with a fresh
// random salt, in PHC string form:
// $argon2id$v=19$m=<KiB>,t=<iterations>,p=<lanes>$<salt>$<key>, salt and key
// in unpadded standard base64.
func hashPassword(password string, p passwordParams) string {
	salt := make([]byte, p.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		panic("crypto/rand: " + err.Error())
	}
	key := argonKey(password, salt, p)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.MemKiB, p.Time, p.Threads,
		b64.EncodeToString(salt), b64.EncodeToString(key))
}

// parsePasswordHash reads a PHC string written by hashPassword, within the
// bounds above.
func parsePasswordHash(encoded string) (p passwordParams, salt, key []byte, err error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return p, nil, nil, errBadHash
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return p, nil, nil, errBadHash
	}
	var threads uint32
	if n, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.MemKiB, &p.Time, &threads); err != nil || n != 3 {
		return p, nil, nil, errBadHash
	}
	if threads < 1 || threads > maxPasswordThreads || p.Time < 1 || p.Time > maxPasswordTime ||
		p.MemKiB < 8*threads || p.MemKiB > maxPasswordMemKiB {
		return p, nil, nil, errBadHash
	}
	p.Threads = uint8(threads)
	b64 := base64.RawStdEncoding
	if salt, err = b64.DecodeString(parts[4]); err != nil || len(salt) < 8 || len(salt) > 64 {
		return p, nil, nil, errBadHash
	}
	if key, err = b64.DecodeString(parts[5]); err != nil || len(key) < 16 || len(key) > 64 {
		return p, nil, nil, errBadHash
	}
	p.SaltLen, p.KeyLen = len(salt), len(key)
	return p, salt, key, nil
}

// verifyPassword reports whether password matches the encoded hash,
// comparing in constant time, and whether the hash's parameters are not
// the current defaults (so the caller may rehash it).
func verifyPassword(encoded, password string) (ok, outdated bool, err error) {
	p, salt, key, err := parsePasswordHash(encoded)
	if err != nil {
		return false, false, err
	}
	got := argonKey(password, salt, p)
	return subtle.ConstantTimeCompare(got, key) == 1, p != defaultPasswordParams, nil
}

// dummyHash is a hash of a random password under the default parameters.
// Authenticate checks a password against it when the user does not exist,
// so that an unknown name takes as long to refuse as a wrong password.
var dummyHash = sync.OnceValue(func() string {
	pw := make([]byte, 32)
	if _, err := rand.Read(pw); err != nil {
		panic("crypto/rand: " + err.Error())
	}
	return hashPassword(base64.RawStdEncoding.EncodeToString(pw), defaultPasswordParams)
})
