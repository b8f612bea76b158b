// Package ipvs holds the model of the kernel's IPVS table (services, real
// servers, statistics) and the generic-netlink client that reads and
// writes it.
//
// The model types are plain comparable values so that the director can diff
// a desired table against the kernel's as a pure function, and so that the
// ipvsadm-compatible views and the importers can share them.
package ipvs
