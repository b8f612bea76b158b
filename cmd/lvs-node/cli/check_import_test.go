package cli

import (
	"strings"
	"testing"
)

// TestCheckAcceptsImportedChecks: what "lvs-node import keepalived" writes
// for the samples with health checks, sorry servers and quorums is a
// director file that "lvs-node check" accepts, keys and all.
func TestCheckAcceptsImportedChecks(t *testing.T) {
	for _, sample := range []struct {
		file string
		keys []string
	}{
		{"checks.keepalived.conf", []string{"health_check:", "type: https", "type: dns", "type: exec", "on_failure: remove"}},
		{"groups.keepalived.conf", []string{"sorry_server:", "quorum: {min_up: 2}", "type: icmp"}},
	} {
		code, out, errOut := runCLI(t, "import", "keepalived", "../../../director/importer/testdata/"+sample.file)
		if code != 0 {
			t.Fatalf("import %s: exit %d: %s", sample.file, code, errOut)
		}
		for _, k := range sample.keys {
			if !strings.Contains(out, k) {
				t.Fatalf("import %s lacks %q:\n%s", sample.file, k, out)
			}
		}
		p := writeFile(t, "director.yaml", out)
		code, res, errOut := runCLI(t, "check", "--config", p)
		if code != 0 || !strings.Contains(res, "valid director configuration") {
			t.Errorf("check of the import of %s: exit %d\n%s%s\n%s", sample.file, code, res, errOut, out)
		}
	}
}
