package cli

import (
	"io"

	"github.com/lvs-node/lvs-node/director"
	"github.com/lvs-node/lvs-node/internal/config"
	"github.com/lvs-node/lvs-node/internal/ipvs"
)

// kernelRoot is where the running kernel's files are read: /proc, /sys
// and /lib/modules.
const kernelRoot = "/"

// loadDirectorForHost loads a director file and checks it against the
// kernel whose files are under root (director.CheckHost), printing every
// problem one per line as loadDirectorConfig does. Notes (setups that
// need help from outside lvs-node) are handed to note.
func loadDirectorForHost(path, root string, stderr io.Writer, note func(string)) (*director.Config, *config.Doc, error) {
	return loadDirectorWith(director.NewLoader(path), path, root, stderr, note)
}

// loadDirectorWith is loadDirectorForHost with the Loader the caller
// keeps (the daemon's, for incremental reloads of included files).
func loadDirectorWith(l *director.Loader, path, root string, stderr io.Writer, note func(string)) (*director.Config, *config.Doc, error) {
	cfg, doc, err := l.Load()
	if err == nil {
		err = director.CheckHost(cfg, doc, ipvs.NewKernelFiles(root))
	}
	if err != nil {
		return nil, nil, badConfig(path, err, stderr)
	}
	for _, n := range director.HostNotes(cfg, doc) {
		note(n)
	}
	return cfg, doc, nil
}

// kernelSummary says what a check against the kernel under root could
// see: which kernel, and whether its module index was there to look at.
func kernelSummary(root string) string {
	k := ipvs.NewKernelFiles(root)
	release, err := k.Release()
	if err != nil {
		return "not checked against a kernel: " + err.Error()
	}
	if index, ok := k.Index(); !ok {
		return "schedulers not checked: kernel " + release + " has no readable module index (" + index + ")"
	}
	return "schedulers and tunnel types checked against kernel " + release
}
