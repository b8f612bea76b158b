package ipvs

import (
	"context"
	"fmt"
)

// cmdZero is IPVS_CMD_ZERO: reset the counters of one service (and its
// real servers) or, without a service, of the whole table.
const cmdZero = 16

// Zero resets the packet, byte and connection counters of the service k
// and its real servers, or of every service when k is nil (ipvsadm -Z).
// A service the kernel does not hold gives ESRCH.
func (c *Client) Zero(ctx context.Context, k *ServiceKey) error {
	if k != nil {
		if err := checkService(Service{ServiceKey: *k}, false); err != nil {
			return err
		}
	}
	err := c.call(ctx, nlmFAck, cmdZero, func(e *encoder) {
		if k != nil {
			e.service(Service{ServiceKey: *k}, false)
		}
	}, nil)
	if err != nil {
		what := "the IPVS counters"
		if k != nil {
			what = "the counters of " + k.String()
		}
		return fmt.Errorf("zero %s: %w", what, err)
	}
	return nil
}
