// Command ctfed is the one binary of a ctfed node: it parses flags and the
// node's configuration file, opens the components in dependency order, runs
// one subcommand and closes them. It holds no business logic.
package main
