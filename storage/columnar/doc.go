// Package columnar keeps an in-memory columnar projection of the queryable
// fields of a node's cases and computes exact aggregates over it.
//
// A Table holds, per case, one small dictionary code per single-valued
// dimension, a bitset (or, for the country-valued dimensions, up to three
// inline codes and an overflow list) per multi-valued dimension, the measure
// fields clamped to their public bounds, the consent flag and the case code.
// It never holds an identity field, free text or an exact date. The store
// keeps it current by calling Upsert and Delete on every write and fills it
// when it opens; Aggregate answers a node.Query with a node.ExactTable by
// scanning the columns on every core.
//
// Exact tables never leave the node: only a noisy table built from one may.
//
// columnar imports node only.
package columnar
