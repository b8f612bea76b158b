package state

import (
	"fmt"
	"os"
)

// Pinner is what can be pinned on a BPF file system (a cilium/ebpf map,
// program or link).
type Pinner interface{ Pin(path string) error }

// ReplacePin pins obj at path in place of whatever is pinned there, in one
// rename, so that the path never goes missing.
func ReplacePin(obj Pinner, path string) error {
	tmp := path + "_new" // bpffs refuses names with dots
	_ = os.Remove(tmp)
	if err := obj.Pin(tmp); err != nil {
		return fmt.Errorf("pin %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("pin %s: %w", path, err)
	}
	return nil
}
