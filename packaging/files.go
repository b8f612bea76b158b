package packaging

import "embed"

// Files holds sysv/, lib/, scripts/ and systemd/ as they are packaged. It
// is read-only.
//
//go:embed sysv lib scripts systemd
var Files embed.FS
