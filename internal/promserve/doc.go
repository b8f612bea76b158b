// Package promserve is how both roles serve their read-only endpoint:
// Prometheus metrics from a registry of the daemon's own (nothing is
// registered globally), each group of metrics with its scrape success and
// duration (node_exporter's habit, so a broken source shows as a metric
// rather than a silent gap), plus /healthz and /readyz. Nothing it serves
// can change state: only GET and HEAD are answered.
package promserve
