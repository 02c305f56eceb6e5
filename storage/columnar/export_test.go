package columnar

// SetMinWorkerRows sets the fewest rows per scanning goroutine and returns
// a function that restores it.
func SetMinWorkerRows(n int) (restore func()) {
	old := minWorkerRows
	minWorkerRows = n
	return func() { minWorkerRows = old }
}
