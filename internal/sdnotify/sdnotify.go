package sdnotify

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sys/unix"
)

// Ready says that start-up or a reload is finished; status is a one-line
// summary shown by "systemctl status" (empty sends none).
func Ready(log *slog.Logger, status string) {
	send(log, daemon.SdNotifyReady, status)
}

// Reloading says that a reload has begun; Ready must follow when it ends,
// whatever its result. It carries MONOTONIC_USEC, which systemd 253 and
// later require of a reload notification.
func Reloading(log *slog.Logger) {
	var ts unix.Timespec
	state := daemon.SdNotifyReloading
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err == nil {
		state += fmt.Sprintf("\nMONOTONIC_USEC=%d", ts.Nano()/int64(time.Microsecond))
	}
	send(log, state, "")
}

// Stopping says that the daemon is shutting down.
func Stopping(log *slog.Logger) {
	send(log, daemon.SdNotifyStopping, "")
}

func send(log *slog.Logger, state, status string) {
	if status != "" {
		// STATUS is one line: a newline would start another assignment.
		state += "\nSTATUS=" + strings.ReplaceAll(status, "\n", " ")
	}
	if _, err := daemon.SdNotify(false, state); err != nil && log != nil {
		log.Warn("cannot notify the service manager", "state", strings.SplitN(state, "\n", 2)[0], "error", err)
	}
}
