package cli

import (
	"errors"
	"fmt"
	"io"

	"github.com/lvs-node/lvs-node/internal/config"
)

// Exit statuses, the same for every command.
const (
	exitFailure   = 1 // anything else that went wrong
	exitBadConfig = 2 // the configuration file does not validate: nothing changed
)

// exitError carries a specific exit status out of a command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// badConfig prints every problem err holds (one line each, with
// file:line:column and key) to stderr and returns an error with status
// exitBadConfig; an error that holds no configuration problem is returned
// as it is.
func badConfig(path string, err error, stderr io.Writer) error {
	es := config.AsErrors(err)
	if len(es) == 0 {
		return err
	}
	for _, e := range es {
		fmt.Fprintln(stderr, e.Error())
	}
	return &exitError{code: exitBadConfig, err: fmt.Errorf("%s: %d problem(s), nothing changed", path, len(es))}
}

// exitCode is the status for err.
func exitCode(err error) int {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return exitFailure
}
