package ipvsadm

import (
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"strings"

	"github.com/lvs-node/lvs-node/internal/ipvs"
)

// JSONTable is the document WriteJSON prints. Field names are stable:
// scripts may rely on them. Services and real servers come in ipvsadm's
// order.
type JSONTable struct {
	Version       string        `json:"version"`         // IPVS version, "1.2.1"
	ConnTableSize uint32        `json:"conn_table_size"` // connection hash table size
	Services      []JSONService `json:"services"`
}

// JSONService is one virtual service.
type JSONService struct {
	Protocol       string       `json:"protocol,omitempty"` // tcp, udp, sctp; absent for fwmark services
	Address        string       `json:"address,omitempty"`  // absent for fwmark services
	Port           uint16       `json:"port"`
	FWMark         uint32       `json:"fwmark,omitempty"`
	Family         string       `json:"family"` // inet or inet6
	Scheduler      string       `json:"scheduler"`
	SchedulerFlags []string     `json:"scheduler_flags"`
	Persistent     bool         `json:"persistent"`
	Timeout        uint32       `json:"timeout"` // persistence timeout in seconds, 0 when not persistent
	Netmask        string       `json:"netmask"` // dotted mask (IPv4) or prefix length (IPv6)
	OnePacket      bool         `json:"one_packet"`
	PE             string       `json:"persistence_engine,omitempty"`
	Stats          JSONStats    `json:"stats"`
	RealServers    []JSONServer `json:"real_servers"`
}

// JSONServer is one real server of a service.
type JSONServer struct {
	Address         string    `json:"address"`
	Port            uint16    `json:"port"`
	Forwarding      string    `json:"forwarding"` // dr, nat, tun, local
	Weight          int32     `json:"weight"`
	UpperThreshold  uint32    `json:"upper_threshold"`
	LowerThreshold  uint32    `json:"lower_threshold"`
	ActiveConns     uint32    `json:"active_conns"`
	InactiveConns   uint32    `json:"inactive_conns"`
	PersistentConns uint32    `json:"persistent_conns"`
	Tunnel          string    `json:"tunnel,omitempty"` // ipvsadm's --tun-info text for tun servers: ipip, gue:PORT:FLAGS, gre:FLAGS
	Stats           JSONStats `json:"stats"`
}

// JSONStats are the 64-bit counters and the rate estimates.
type JSONStats struct {
	Conns    uint64 `json:"conns"`
	InPkts   uint64 `json:"in_packets"`
	OutPkts  uint64 `json:"out_packets"`
	InBytes  uint64 `json:"in_bytes"`
	OutBytes uint64 `json:"out_bytes"`
	CPS      uint64 `json:"cps"`
	InPPS    uint64 `json:"in_pps"`
	OutPPS   uint64 `json:"out_pps"`
	InBPS    uint64 `json:"in_bps"`
	OutBPS   uint64 `json:"out_bps"`
}

func jsonStats(s ipvs.Stats) JSONStats {
	return JSONStats{s.Conns, s.InPkts, s.OutPkts, s.InBytes, s.OutBytes, s.CPS, s.InPPS, s.OutPPS, s.InBPS, s.OutBPS}
}

// ToJSON converts t to the JSON document model.
func ToJSON(t *ipvs.Table, info ipvs.Info) JSONTable {
	out := JSONTable{Version: info.VersionString(), ConnTableSize: info.ConnTableSize, Services: []JSONService{}}
	for _, se := range ordered(t, false) {
		js := JSONService{
			Port:           se.Port,
			FWMark:         se.FWMark,
			Family:         "inet",
			Scheduler:      se.Scheduler,
			SchedulerFlags: []string{},
			Persistent:     se.Flags&ipvs.FlagPersistent != 0,
			OnePacket:      se.Flags&ipvs.FlagOnePacket != 0,
			PE:             se.PE,
			Stats:          jsonStats(se.Stats),
			RealServers:    []JSONServer{},
		}
		if family(se.ServiceKey) == afInet6 {
			js.Family = "inet6"
		}
		if se.FWMark == 0 {
			js.Protocol = se.Protocol.String()
			js.Address = addrString(se.Addr)
		}
		if f := schedFlags(se.Service); f != "" {
			js.SchedulerFlags = strings.Split(f, ",")
		}
		if js.Persistent {
			js.Timeout = se.Timeout
		}
		js.Netmask, _ = maskString(se.Service)
		for _, d := range orderedDests(se.Dests, false) {
			jd := JSONServer{
				Address:         addrString(d.Addr),
				Port:            d.Port,
				Forwarding:      d.Forward.String(),
				Weight:          d.Weight,
				UpperThreshold:  d.UpperThreshold,
				LowerThreshold:  d.LowerThreshold,
				ActiveConns:     d.ActiveConns,
				InactiveConns:   d.InactConns,
				PersistentConns: d.PersistConns,
				Stats:           jsonStats(d.Stats),
			}
			if d.Forward == ipvs.Tunnel {
				jd.Tunnel = tunInfo(d.Destination)
			}
			js.RealServers = append(js.RealServers, jd)
		}
		out.Services = append(out.Services, js)
	}
	return out
}

// addrString renders an address as ipvsadm does, without brackets.
func addrString(a netip.Addr) string {
	if a.Is4() {
		return a.String()
	}
	return ntop6(a)
}

// WriteJSON prints t as an indented JSONTable.
func WriteJSON(w io.Writer, t *ipvs.Table, info ipvs.Info) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(ToJSON(t, info)); err != nil {
		return fmt.Errorf("write json: %w", err)
	}
	return nil
}
