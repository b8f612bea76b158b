package ipvsadm

import (
	"fmt"
	"strings"
)

// Pos is a position in a rules file; Line and Column start at 1.
type Pos struct {
	File   string
	Line   int
	Column int
}

func (p Pos) String() string { return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Column) }

// ParseError is a problem in a rules file.
type ParseError struct {
	Pos Pos
	Msg string
}

func (e *ParseError) Error() string { return e.Pos.String() + ": " + e.Msg }

// Word is one argument of an ipvsadm command and where it was written.
type Word struct {
	Text string
	Pos  Pos
	// Verbatim is true when Text is written unchanged at Pos (no quotes,
	// no variables), so that a column inside the word can be pointed at.
	Verbatim bool
}

// at returns the position of byte offset i of the word: exact for
// verbatim words, the start of the word otherwise.
func (w Word) at(i int) Pos {
	p := w.Pos
	if w.Verbatim {
		p.Column += i
	}
	return p
}

// splitLine breaks one line of a rules file into words: blanks separate,
// single and double quotes group, and a word starting with '#' starts a
// comment.
func splitLine(file string, lineNo int, line string) ([]Word, error) {
	var words []Word
	i := 0
	for i < len(line) {
		for i < len(line) && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r') {
			i++
		}
		if i >= len(line) || line[i] == '#' {
			break
		}
		start := i
		var sb strings.Builder
		quoted := false
		for i < len(line) && line[i] != ' ' && line[i] != '\t' && line[i] != '\r' {
			c := line[i]
			if c == '"' || c == '\'' {
				end := strings.IndexByte(line[i+1:], c)
				if end < 0 {
					return nil, &ParseError{Pos: Pos{file, lineNo, i + 1}, Msg: "unterminated quote"}
				}
				sb.WriteString(line[i+1 : i+1+end])
				i += end + 2
				quoted = true
				continue
			}
			sb.WriteByte(c)
			i++
		}
		words = append(words, Word{Text: sb.String(), Pos: Pos{file, lineNo, start + 1}, Verbatim: !quoted})
	}
	return words, nil
}
