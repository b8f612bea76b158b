// Package agentcheck reads and writes the reply of an HAProxy agent check:
// one line of words that a backend's agent answers when a load balancer
// connects to it. lvs-node's real-server agent writes it, the director's
// poller reads it, and HAProxy can poll the same agent.
//
// # Grammar (as HAProxy 2.x reads it, src/tcpcheck.c)
//
// The reply is the text up to the first CR or LF. Text that is not ended by
// CR or LF when the agent closes the connection is an incomplete line and is
// ignored whole (HAProxy: "Ignoring incomplete line from agent"); so is a
// line holding a NUL byte, which HAProxy's C string handling cuts short.
// The line is made of words separated by spaces, tabs or commas; words are
// case-insensitive, may come in any order, and when several words of one
// kind appear the last one wins:
//
//   - a weight: a word that starts with a digit and holds '%', such as
//     "75%": the weight relative to the configured weight. HAProxy accepts
//     only digits followed by exactly one '%' ("7%5" is trailing garbage)
//     and caps the value at 25600%;
//   - "maxconn:N", the server's connection limit;
//   - a health state: "up", "down", "stopped" or "fail";
//   - an administrative state: "ready", "drain" or "maint";
//   - a word starting with '#' ends the words: the rest of the line, after
//     blanks, is a free-text description.
//
// Any other word is an error that HAProxy reports and otherwise ignores;
// the words it did understand still apply. Parse does the same: it returns
// the reply it understood together with a *SyntaxError naming every word it
// did not. A caller that must not act on a doubtful reply (the director)
// ignores the whole reply when Parse returns an error.
//
// # Extension
//
// lvs-node also reads "weight:N" (an absolute weight) and "weight:N%"
// (the same as "N%"), which some agents write. HAProxy does not know these
// words and reports them as errors, so Format writes a relative weight as
// "N%" and writes "weight:N" only for an absolute weight.
package agentcheck
