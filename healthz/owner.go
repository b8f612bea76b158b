package healthz

import (
	"fmt"
	"net/netip"
	"strconv"
)

// Owner is one use of a check: a real server of a virtual service. Every
// field is the caller's; they label the owner's metrics and fill the
// environment of exec checks.
type Owner struct {
	Service  string     // virtual service name
	VIP      netip.Addr // zero for a firewall-mark service without address
	Port     uint16     // service port, 0 for firewall-mark services
	Protocol string     // tcp, udp or sctp
	FWMark   uint32     // firewall mark, 0 for address services
	Real     netip.AddrPort
}

func (o Owner) String() string {
	svc := o.Protocol + " "
	switch {
	case o.FWMark != 0:
		svc += "fwmark " + strconv.FormatUint(uint64(o.FWMark), 10)
	case o.VIP.IsValid():
		svc += netip.AddrPortFrom(o.VIP, o.Port).String()
	}
	return fmt.Sprintf("%s (%s) real server %s", o.Service, svc, o.Real)
}

// ownerLabels are the label names of per-owner metrics: the service's
// name, then the labels node_exporter's IPVS collector gives a backend
// (the director's lvs_node_ipvs_backend_* metrics carry the same).
func ownerLabels() []string {
	return []string{"service", "local_address", "local_port", "remote_address", "remote_port"}
}

func (o Owner) labelValues() []string {
	vip := ""
	if o.VIP.IsValid() {
		vip = o.VIP.String()
	}
	return []string{o.Service, vip, strconv.Itoa(int(o.Port)), o.Real.Addr().String(), strconv.Itoa(int(o.Real.Port()))}
}

// ExecEnv returns the LVS_* environment of an exec check run for o
// against target: LVS_SERVICE, LVS_VIP, LVS_PORT, LVS_PROTOCOL,
// LVS_FWMARK, LVS_REAL_SERVER, LVS_REAL_PORT, LVS_CHECK_ADDRESS and
// LVS_CHECK_PORT.
func ExecEnv(o Owner, target netip.AddrPort) []string {
	vip := ""
	if o.VIP.IsValid() {
		vip = o.VIP.String()
	}
	return []string{
		"LVS_SERVICE=" + o.Service,
		"LVS_VIP=" + vip,
		"LVS_PORT=" + strconv.Itoa(int(o.Port)),
		"LVS_PROTOCOL=" + o.Protocol,
		"LVS_FWMARK=" + strconv.FormatUint(uint64(o.FWMark), 10),
		"LVS_REAL_SERVER=" + o.Real.Addr().String(),
		"LVS_REAL_PORT=" + strconv.Itoa(int(o.Real.Port())),
		"LVS_CHECK_ADDRESS=" + target.Addr().String(),
		"LVS_CHECK_PORT=" + strconv.Itoa(int(target.Port())),
	}
}
