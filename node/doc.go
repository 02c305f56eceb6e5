// Package node is ctfed's domain: the case record of one victim assisted by
// one organisation, the codebook that declares every field and closed code
// list (and which fields are identity fields), the errors every layer shares,
// and the small interfaces the domain consumes (CaseStore, ...).
//
// node imports no other ctfed package except privacy. storage, federation
// and node/web implement or carry what is declared here.
package node
