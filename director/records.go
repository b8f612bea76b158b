package director

import (
	"net/netip"
	"path/filepath"
	"slices"

	"github.com/lvs-node/lvs-node/director/fullnat"
	"github.com/lvs-node/lvs-node/internal/hostnet"
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
	// Services lvs-node created or took over (normalised keys).
	Services []ipvs.ServiceKey `json:"services"`
	// FWMarks are the marks allocated to ports: services, by name.
	FWMarks map[string]uint32 `json:"fwmarks,omitempty"`
	// Host is what lvs-node added to the host: the VIPs it bound (only
	// those it added; one present before belongs to someone else).
	Host hostnet.Record `json:"host,omitzero"`
	// Overrides are the operator's drain states of real servers.
	Overrides []overrideRecord `json:"overrides,omitempty"`
	// FullNAT is what full-NAT added: nftables tables, the egress
	// program's pins and hooks.
	FullNAT fullnat.Record `json:"fullnat,omitzero"`

	// Written by earlier versions, which recorded every bound VIP as
	// their own; read once and moved into Host.
	LegacyVIPInterface string       `json:"vip_interface,omitempty"`
	LegacyVIPs         []netip.Addr `json:"vips,omitempty"`
}

// overrideRecord is one real server's override as saved.
type overrideRecord struct {
	Server ServerRef `json:"server"`
	Override
}

func recordsPath(stateDir string) string { return filepath.Join(stateDir, recordsFile) }

func loadRecords(stateDir string) (*records, error) {
	r := &records{}
	if _, err := state.Load(recordsPath(stateDir), r); err != nil {
		return nil, err
	}
	for _, a := range r.LegacyVIPs {
		r.Host.Addrs = hostnet.AppendNew(r.Host.Addrs, vipAddr(r.LegacyVIPInterface, a))
	}
	r.LegacyVIPInterface, r.LegacyVIPs = "", nil
	return r, nil
}

func (r *records) save(stateDir string) error {
	return state.Save(recordsPath(stateDir), r)
}

func (r *records) owned() Ownership {
	o := make(Ownership, len(r.Services))
	for _, k := range r.Services {
		o[ipvs.NormKey(k)] = true
	}
	return o
}

// records returns the engine's records, loading them on first use.
func (e *Engine) records() (*records, error) {
	if e.rec != nil {
		return e.rec, nil
	}
	r, err := loadRecords(e.stateDir)
	if err != nil {
		return nil, err
	}
	e.rec = r
	for _, o := range r.Overrides {
		e.in.Override[o.Server] = o.Override
	}
	return r, nil
}

// ownershipWith returns a copy of o with the services of t added, except
// those present in cur (nil: none is): lvs-node takes over an existing
// service only once a reconciliation succeeded.
func ownershipWith(o Ownership, t *ipvs.Table, cur *ipvs.Table) Ownership {
	out := make(Ownership, max(len(o), len(t.Services)))
	for k := range o {
		out[k] = true
	}
	var exists map[ipvs.ServiceKey]bool
	if cur != nil {
		exists = make(map[ipvs.ServiceKey]bool, len(cur.Services))
		for i := range cur.Services {
			exists[ipvs.NormKey(cur.Services[i].ServiceKey)] = true
		}
	}
	for i := range t.Services {
		k := ipvs.NormKey(t.Services[i].ServiceKey)
		if !exists[k] {
			out[k] = true
		}
	}
	return out
}

func sortedKeys(o Ownership) []ipvs.ServiceKey {
	ks := make([]ipvs.ServiceKey, 0, len(o))
	for k := range o {
		ks = append(ks, k)
	}
	slices.SortFunc(ks, ipvs.CompareKeys)
	return ks
}
