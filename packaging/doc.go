// Package packaging holds what the lvs-node .deb and .rpm install besides
// the binary, and the tests of the built packages.
//
//   - nfpm.yaml and build.sh: the package definition and its build
//     (make packages); gen/ writes the manual pages and shell completion.
//   - systemd/: the units, Type=notify (internal/sdnotify), reloads that
//     wait for the daemon's verdict, one runtime directory per role.
//   - sysv/ and lib/init-functions: LSB init scripts in POSIX sh.
//   - scripts/ and lib/maintainer-functions: the deb maintainer scripts
//     and rpm scriptlets.
//   - grafana/ and prometheus/: a dashboard and alert rules over the
//     metrics the daemons export.
//
// Files exposes the init scripts, the shell libraries and the maintainer
// scripts to the lab tests, which run them inside the VM as the packages
// install them.
package packaging
