// Package config reads, validates and writes a ctfed node's configuration
// file (ctfed.toml in the node directory): defaults, parsing, validation with
// errors that name the field. It imports no other ctfed package; cmd/ctfed
// turns a Config into the plain fields of each component.
package config
