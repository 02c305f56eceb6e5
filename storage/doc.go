// Package storage is a ctfed node's encrypted store, on badger/v4: the
// organisation's case records with every earlier version, their identity
// fields sealed per case, the node keyring (keys.json), and encrypted
// backups, and the node's users, web sessions and API tokens. DB implements
// node.CaseStore and node.UserStore.
//
// storage may import node, privacy (budget arithmetic for the ledger) and
// storage/columnar, the in-memory projection used for aggregation, which
// every write keeps current and Open rebuilds. Other consumers of changes
// use DB.OnChange.
//
// # Node directory
//
//	DIR/keys.json   the keyring, mode 0600 (Keyring)
//	DIR/store/      the badger files, encrypted with the keyring's store key
//
// # Keys
//
// CreateKeyring generates a store key (badger's encryption key), a
// key-encryption key (KEK) with a generation number, an HMAC key for
// import's case codes, and room for extra named keys. The key set is sealed
// with AES-256-GCM under a random master key, which is itself sealed under a
// key derived from the passphrase with argon2id (parameters in the file) and
// under a key derived from the recovery key printed once at init. In
// insecure mode (throwaway demos only) the keys are stored unwrapped.
//
// Every case that has identity fields gets its own random identity key;
// each version's identity is sealed with AES-256-GCM under it, on top of
// badger's encryption, so a backup or an export without identity carries
// none. The identity key is kept wrapped under the current KEK in the
// case's current record (one badger entry per case written).
// EraseIdentity crypto-shreds a case: its wrapped key is dropped and the
// KEK rotated (every other identity key re-wrapped under a new generation,
// the old generation removed from keys.json), so the copies badger still
// holds in old files, and backups taken before the erase, can no longer be
// opened. A backup restored after an erase therefore reads every identity
// whose KEK generation was retired as erased: take a new backup after an
// erase. Old copies of keys.json kept elsewhere defeat the shredding;
// operators keep only the current one.
//
// # Key layout
//
// Every key starts with a prefix naming its kind; case codes never contain
// "/". New kinds take new prefixes from the reserved ones below.
//
//	prefix                      value
//	c/<code>                    current version of a case, with its wrapped
//	                            identity key (record.go, seal.go)
//	h/<code>/<version u32 BE>   an earlier version, same encoding without the
//	                            key, oldest first
//	meta/schema                 u32 BE: SchemaVersion of the layout
//	meta/codebook               codebook version the store was created with
//	meta/count                  u64 BE: number of cases
//	l/n/<year u16>              node-wide privacy budget spent on a year (ledger.go)
//	l/o/<org>\x00<year u16>     an organisation's budget spent on a year
//	l/c/<epoch>/<hash>          a cached answer of one epoch, with a TTL
//	a/<seq u64 BE>              an audit entry, hash-chained (audit.go)
//	meta/audit_head             the audit log's newest sequence number and hash
//	hr/<peer>\x00<seq u64 BE>   an audit head another node signed in an answer
//	p/<approval id>             a remote query awaiting (or decided by) approval (approvals.go)
//	r/<peer>\x00<query id>      the reply given to a remote query ID, with a TTL
//	u/u/<name>                  a user: role, disabled, the argon2id hash of its
//	                            password with the hash's parameters (users.go)
//	u/s/<hex SHA-256 of ID>     a web session: user, CSRF token, expiry; with a TTL
//	u/t/<hex SHA-256 of secret> an API token: name, role, creator, expiry, revoked;
//	                            its ID is the first 16 hex digits of the key's hash
//
// Writes are serialised; PutCases writes one batch (at most MaxBatch cases)
// in one transaction, so an import interrupted at any point holds whole
// batches only. Its per-case work (validation, encoding, sealing) runs on
// every core; an in-memory Bloom filter of the stored codes spares the
// lookup of codes that are certainly new. A store whose meta/schema is newer than SchemaVersion is
// refused at Open.
//
// # Backups
//
// Backup writes the store's current key/value pairs through AES-256-GCM in
// 64 KiB frames (magic "CTFEDBK1", schema version, numbered frames, the
// last one marked, so truncation is detected) under a key derived from the
// store key. Restore loads one into a node directory holding the same
// keys.json and no store, whole or not at all.
package storage
