package main

import (
	"os"

	"github.com/lvs-node/lvs-node/cmd/lvs-node/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
