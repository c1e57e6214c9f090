//go:build !unix

package sqlite

// freeBytes cannot tell the free space here: no reserve is kept.
func freeBytes(string) (int64, bool) { return 0, false }
