//go:build linux

package storage

import (
	"bufio"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// releaseMappedPages tells the kernel that the pages of the store's
// files (tables, value log, memtable logs) this process has mapped are not
// needed now. Badger maps its tables;
// rebuilding the projection at open reads every table end to end, which
// would leave the whole store resident in the process's memory for as long
// as it runs. The pages stay in the page cache and fault back in on the
// next read, so this changes nothing but the node's resident memory.
func releaseMappedPages(storeDir string) {
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || !strings.HasPrefix(fields[5], storeDir) || !(strings.HasSuffix(fields[5], ".sst") || strings.HasSuffix(fields[5], ".vlog") || strings.HasSuffix(fields[5], ".mem")) {
			continue
		}
		lo, hi, ok := strings.Cut(fields[0], "-")
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			continue
		}
		// madvise by address: the mapping is badger's, not a Go value.
		_, _, _ = unix.Syscall(unix.SYS_MADVISE, uintptr(start), uintptr(end-start), unix.MADV_DONTNEED)
	}
}
