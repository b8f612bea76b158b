package topo

import (
	"fmt"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ethtoolValue is struct ethtool_value.
type ethtoolValue struct {
	cmd  uint32
	data uint32
}

// ifreqPtr is struct ifreq with a pointer in its union.
type ifreqPtr struct {
	name [unix.IFNAMSIZ]byte
	data unsafe.Pointer
	_    [16]byte // the rest of the union
}

// SetChecksumOffload turns transmit and receive checksum offload of the
// host's interface ifname on or off (ethtool -K IF tx on|off rx on|off).
// With both off on a veth, segments carry complete checksums and the
// receiving kernel verifies them.
func (h *Host) SetChecksumOffload(t testing.TB, ifname string, tx, rx bool) {
	t.Helper()
	err := h.Do(func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		for _, x := range []struct {
			cmd uint32
			on  bool
		}{{unix.ETHTOOL_STXCSUM, tx}, {unix.ETHTOOL_SRXCSUM, rx}} {
			v := ethtoolValue{cmd: x.cmd}
			if x.on {
				v.data = 1
			}
			var ifr ifreqPtr
			copy(ifr.name[:], ifname)
			ifr.data = unsafe.Pointer(&v)
			if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr))); e != 0 {
				return fmt.Errorf("ethtool command %#x: %w", x.cmd, e)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("topo: checksum offload of %s %s: %v", h.Name, ifname, err)
	}
}
