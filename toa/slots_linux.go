package toa

import (
	"errors"
	"fmt"
	"os"

	"github.com/cilium/ebpf"

	"github.com/lvs-node/lvs-node/toa/internal/rsprog"
)

// openSlots opens the pinned slot array.
func openSlots(opts Options) (*ebpf.Map, error) {
	m, err := ebpf.LoadPinnedMap(mapPin(opts.pinDir(), rsprog.MapSlots), &ebpf.LoadPinOptions{ReadOnly: true})
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w (nothing pinned at %s)", ErrNotAttached, opts.pinDir())
	}
	if err != nil {
		return nil, fmt.Errorf("slots: %w", err)
	}
	return m, nil
}

// SlotTotal returns the size of the slot array, without reading it.
func SlotTotal(opts Options) (int, error) {
	m, err := openSlots(opts)
	if err != nil {
		return 0, err
	}
	defer m.Close()
	return int(m.MaxEntries()), nil
}

// SlotUse is how many of the preallocated address slots hold a socket.
type SlotUse struct {
	InUse int `json:"in_use"`
	Total int `json:"total"`
}

// ReadSlots counts the slots that hold a socket's address. A count near
// the total, with slot_taken growing, means more connections are open at
// once than there are slots (the others use socket storage) or that
// sockets never accepted held on to theirs.
func ReadSlots(opts Options) (SlotUse, error) {
	m, err := openSlots(opts)
	if err != nil {
		return SlotUse{}, err
	}
	defer m.Close()
	use := SlotUse{Total: int(m.MaxEntries())}
	keys := make([]uint32, 4096)
	vals := make([]rsprog.Slot, len(keys))
	var cursor ebpf.MapBatchCursor
	for {
		n, err := m.BatchLookup(&cursor, keys, vals, nil)
		for _, v := range vals[:n] {
			if v.Cookie != 0 {
				use.InUse++
			}
		}
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return use, nil
		}
		if err != nil {
			return SlotUse{}, fmt.Errorf("read slots: %w", err)
		}
	}
}
