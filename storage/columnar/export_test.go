package columnar

// SetMinWorkerRows sets the fewest rows per scanning goroutine and returns
// a function that restores it.
func SetMinWorkerRows(n int) (restore func()) {
	old := minWorkerRows
	minWorkerRows = n
	return func() { minWorkerRows = old }
}

// SetPairRowsPerEntry sets how many rows the pair path needs per entry of
// its tally (0: always take it when the query allows) and returns a
// function that restores it.
func SetPairRowsPerEntry(n int) (restore func()) {
	old := pairRowsPerEntry
	pairRowsPerEntry = n
	return func() { pairRowsPerEntry = old }
}
