package director

import (
	"github.com/lvs-node/lvs-node/internal/ipvs"
	"github.com/lvs-node/lvs-node/internal/ipvsadm"
)

// FormatOp renders op as the ipvsadm arguments that would make the same
// change (see ipvsadm.FormatOp).
func FormatOp(op ipvs.Op) string { return ipvsadm.FormatOp(op) }
