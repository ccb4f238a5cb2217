// Package atomicfile replaces small files durably: a reader sees the old
// content or the new, never a mix, and the new content survives a crash
// once Write returns.
package atomicfile
