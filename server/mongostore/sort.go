package mongostore

import (
	"cmp"
	"slices"
)

// sortBy orders items by a string key. Small reference collections are
// sorted here rather than by the server: FerretDB sorts without an index
// either way, and the result is the same on MongoDB.
func sortBy[T any](items []T, key func(T) string) {
	slices.SortFunc(items, func(a, b T) int { return cmp.Compare(key(a), key(b)) })
}
