// Package kerneltest holds helpers for the real-kernel tests that run on the
// development host: a throwaway network namespace per test, and the rule
// that such a test may skip for lack of root only outside CI.
package kerneltest
