package storage

// KeyringInsecure reports whether the node directory dir holds keys stored
// without a passphrase (made with --insecure-no-passphrase), so that the
// CLI can skip asking for one. Returns NotFound when dir is not a node
// directory.
func KeyringInsecure(dir string) (bool, error) {
	kf, err := readKeyFile(dir)
	if err != nil {
		return false, wrapOp("storage.KeyringInsecure", err)
	}
	return kf.Insecure, nil
}
