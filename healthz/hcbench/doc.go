// Package hcbench is the harness of the health-check benchmarks: local
// listeners that count the checks they receive, a checker process that
// runs a healthz.Manager over them, and the measures (CPU per 1,000
// checks a second, resident memory, detection latency). The same harness
// serves the host benchmark of the healthz package and the side-by-side
// benchmark with keepalived in the lab VM (e2e).
package hcbench
