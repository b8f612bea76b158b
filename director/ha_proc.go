package director

import (
	"os"
	"strconv"
	"strings"
)

// keepalivedPID returns the process id of a running keepalived (its
// parent process, the lowest id), or 0 when none runs.
func keepalivedPID() int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	low := 0
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/comm")
		if err != nil || strings.TrimSpace(string(b)) != "keepalived" {
			continue
		}
		if low == 0 || pid < low {
			low = pid
		}
	}
	return low
}
