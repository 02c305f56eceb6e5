// Package federation carries ctfed's queries between organisations over
// go-libp2p: node identities, the federation authority's membership
// certificates and roster, the connection gater, the wire protocols
// (/ctfed/roster/1.0.0 and /ctfed/query/1.0.0) and the coordinator that fans
// one query out to every contributor and combines the noisy answers.
//
// # Trust model
//
// Every node has an Ed25519 libp2p identity key (its peer ID is its name on
// the network) and an X25519 key-agreement key, kept by the node's keyring
// (Identity, Marshal, UnmarshalIdentity).
//
// The federation authority holds one more Ed25519 key, the trust anchor.
// Every member pins the authority's public key when it joins: by its
// fingerprint ("ctfed-auth:" and the base32 of the SHA-256 of the key, see
// Fingerprint), and from the join bundle the authority hands back, whose key
// must match the pinned fingerprint. Everything a node believes about
// membership comes from documents signed by the pinned key:
//
//   - a Certificate binds a peer ID to its X25519 key, organisation, country,
//     roles (contributor, querier) and validity period, under a serial;
//   - the Roster is the set of certificates with their revocations (by
//     serial or peer ID), a monotonic version, an issue time, a next_update
//     time, the authority's own peer IDs and, when the federation uses a
//     private network key, that key's fingerprint.
//
// A roster not signed by the pinned key is rejected; a roster whose version
// is not newer than the current one is stale and ignored. Signatures cover a
// canonical byte encoding of each document (its JSON encoding without the
// signature, with a domain tag per kind of document), so a file may be
// reformatted but not altered. A join request is signed by the requesting
// node's libp2p key, so the authority knows the node holds it.
//
// Rosters spread three ways: the authority's node pushes each new roster to
// every member (with retries and backoff), members exchange rosters on every
// new connection (each offers its version and the newer roster flows), and an
// operator may copy the roster file (LoadRosterFile). The authority's node
// renews the roster once half of its validity has passed (Node.Authority).
//
// Addresses are not in certificates: they travel in libp2p's signed peer
// records, which the roster exchange carries for every current member. Each
// record is signed by its own peer, so a member relaying it cannot forge it.
// A member therefore only needs the authority's address (from its join
// bundle) to find every other member.
//
// # Gating
//
// A node's connection gater refuses, inbound and outbound, every peer that is
// not a current member of its roster (unknown, revoked, not yet valid or
// expired, with a clock-skew tolerance); the authority's peers are always let
// in so that a new member can receive its first roster. A roster change
// closes existing connections to peers that lost their membership. The query
// handler checks membership and the querier role again for every request,
// and a node whose roster is past next_update plus a grace period stops
// answering (Unavailable) until it receives a newer one.
//
// With a private network key (PSK) every connection is additionally
// encrypted with the federation-wide key (TCP only); a peer without it cannot
// even complete a handshake and is reported as unreachable.
//
// # What crosses the wire
//
// Messages are uvarint-length-prefixed JSON with a size limit per stream.
// Errors cross as a kind with its fixed message (node.Kind.Message) and, for
// a few refusals, a fixed reason code; never an internal error's text.
// Answers are signed by the answering node's libp2p key, bound to the query
// ID and the querier's peer ID, and carry the answering node's audit head,
// which the querier keeps. Per-node noisy tables reach the querier's node
// (operators should know this) but the coordinator keeps them only in memory
// and returns only the combined result and the coverage.
//
// federation imports node and privacy, go-libp2p and zap; it never imports
// storage, config or cmd. The CLI wires it to the node's keyring, store and
// configuration.
package federation
