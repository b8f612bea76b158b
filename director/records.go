package director

import (
	"net/netip"
	"path/filepath"
	"slices"

	"github.com/lvs-node/lvs-node/internal/ipvs"
	"github.com/lvs-node/lvs-node/internal/state"
)

// Files in the state directory.
const (
	recordsFile = "director.json"
	sysctlsFile = "director-sysctls.json"
)

// records is what the director remembers across restarts.
type records struct {
	// Services lvs-node created or adopted (normalised keys).
	Services []ipvs.ServiceKey `json:"services"`
	// FWMarks are the marks allocated to ports: services, by name.
	FWMarks map[string]uint32 `json:"fwmarks,omitempty"`
	// VIPs lvs-node added to the VIP interface.
	VIPInterface string       `json:"vip_interface,omitempty"`
	VIPs         []netip.Addr `json:"vips,omitempty"`
}

func recordsPath(stateDir string) string { return filepath.Join(stateDir, recordsFile) }

func loadRecords(stateDir string) (*records, error) {
	r := &records{}
	if _, err := state.Load(recordsPath(stateDir), r); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *records) save(stateDir string) error {
	return state.Save(recordsPath(stateDir), r)
}

func (r *records) owned() Ownership {
	o := make(Ownership, len(r.Services))
	for _, k := range r.Services {
		o[normKey(k)] = true
	}
	return o
}

func sortedKeys(o Ownership) []ipvs.ServiceKey {
	ks := make([]ipvs.ServiceKey, 0, len(o))
	for k := range o {
		ks = append(ks, k)
	}
	slices.SortFunc(ks, compareKeys)
	return ks
}

func compareKeys(a, b ipvs.ServiceKey) int {
	switch {
	case a.Family != b.Family:
		return int(a.Family) - int(b.Family)
	case a.FWMark != b.FWMark:
		if a.FWMark < b.FWMark {
			return -1
		}
		return 1
	case a.Protocol != b.Protocol:
		return int(a.Protocol) - int(b.Protocol)
	case a.Addr != b.Addr:
		return a.Addr.Compare(b.Addr)
	}
	return int(a.Port) - int(b.Port)
}
