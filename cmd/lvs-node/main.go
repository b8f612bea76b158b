// Command lvs-node is the single binary of both LVS roles: the director
// that programs IPVS and the real-server agent.
package main

import (
	"os"

	"github.com/lvs-node/lvs-node/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
