package ipvs

import "fmt"

// OpError reports the operation of an Apply batch that failed. The
// operations before Index were applied. Apply sends nothing more once a
// failure comes back, but requests already in flight were processed by
// the kernel: the operations Index+1 up to Sent-1 may have taken effect
// too, the ones from Sent on were not attempted.
//
// errors.Is sees the kernel's errno through it (unix.EEXIST for a
// duplicate, unix.ENOENT for a missing real server or an unknown
// scheduler, unix.ESRCH for a missing service).
type OpError struct {
	Index int   // position of the failed operation in the batch
	Op    Op    // the failed operation
	Err   error // what went wrong, usually a unix.Errno
	Sent  int   // number of operations handed to the kernel
}

func (e *OpError) Error() string {
	return fmt.Sprintf("ipvs operation %d (%s): %v", e.Index, describeOp(e.Op), e.Err)
}

func (e *OpError) Unwrap() error { return e.Err }

// describeOp names an operation the way an operator reads it, for
// example "add-server 10.0.0.11:80 to TCP 10.0.0.100:80".
func describeOp(op Op) string {
	switch op.Kind {
	case AddDest:
		return fmt.Sprintf("%s %s to %s", op.Kind, op.Dest.DestKey, op.Service.ServiceKey)
	case EditDest, DelDest:
		return fmt.Sprintf("%s %s of %s", op.Kind, op.Dest.DestKey, op.Service.ServiceKey)
	}
	return fmt.Sprintf("%s %s", op.Kind, op.Service.ServiceKey)
}
