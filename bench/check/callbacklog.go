package check

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/coterie-mpc/coterie/callback"
)

// decidedMsg is the message of the line the reference callback server
// (callback.Server) logs for every answer it gives; the test runs the
// server to keep the two in step.
const decidedMsg = "callback request decided"

// maxLogLine bounds a line of the callback server's log.
const maxLogLine = 1 << 20

// ReadCallbackLog reads the decisions from the log of `coterie callback
// serve`: its standard error, in slog's text format, one "callback request
// decided" line per answer. Other lines (warnings, refusals, anything else
// on the stream) are skipped; a decision line without a request id or
// with an unknown action is ErrBadRecords, because a decision lost while
// reading would turn into a false I5 violation or hide a real one.
func ReadCallbackLog(r io.Reader) (*CallbackLog, error) {
	log := &CallbackLog{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxLogLine)
	for n := 1; sc.Scan(); n++ {
		f, ok := textFields(sc.Text())
		if !ok || f["msg"] != decidedMsg {
			continue
		}
		a, err := callback.ParseAction(f["action"])
		if err != nil || f["request_id"] == "" {
			return nil, fmt.Errorf("%w: callback log line %d: a decision without a request id or a known action", ErrBadRecords, n)
		}
		log.Decisions = append(log.Decisions, Decision{RequestID: f["request_id"], Action: a.String()})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: callback log: %v", ErrBadRecords, err)
	}
	return log, nil
}

// textFields splits a line of slog's text format into its key=value
// fields; values are bare or Go-quoted. It answers false for a line in
// another format.
func textFields(line string) (map[string]string, bool) {
	fields := map[string]string{}
	for line = strings.TrimSpace(line); line != ""; line = strings.TrimLeft(line, " ") {
		k, rest, ok := strings.Cut(line, "=")
		if !ok || k == "" || strings.ContainsAny(k, " \"") {
			return nil, false
		}
		var v string
		if strings.HasPrefix(rest, `"`) {
			q, err := strconv.QuotedPrefix(rest)
			if err != nil {
				return nil, false
			}
			v, _ = strconv.Unquote(q)
			rest = rest[len(q):]
		} else {
			v, rest, _ = strings.Cut(rest, " ")
		}
		fields[k] = v
		line = rest
	}
	return fields, len(fields) > 0
}
