// Package logthrottle rate-limits repeated identical log records: a
// slog.Handler that wraps another and lets through at most Burst identical
// records per Interval, then one summary of how many it held back.
//
// Two records are identical when they have the same level, message and
// attributes (keys and values, those added with Logger.With included), at
// any time: a component that fails in a loop writes the same record over
// and over, and one that fails for many users writes different ones, which
// all pass. The summary is written at the end of the window, at the
// record's level, with message "suppressed identical records", the count
// (suppressed), the window (interval), the held-back record's message
// (record) and its attributes.
//
// Time comes from an injected clock.Clock, so tests drive windows with a
// fake clock. The set of records it remembers is bounded (MaxRecords); past
// it, new kinds of records pass unthrottled until windows end.
//
// A Handler and every handler derived from it with WithAttrs or WithGroup
// share one state and are safe for concurrent use. Flush writes the
// summaries still pending, before the writer underneath is closed.
package logthrottle
