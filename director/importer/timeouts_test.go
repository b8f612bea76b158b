package importer

import (
	"strings"
	"testing"

	"github.com/lvs-node/lvs-node/director"
)

// TestTimeoutsImported: ipvsadm --set and keepalived's lvs_timeouts
// become director.timeouts, which the director reads; 0 leaves a timeout
// as the kernel has it, as in both peers.
func TestTimeoutsImported(t *testing.T) {
	const vs = "virtual_server 10.0.0.1 80 {\n protocol TCP\n lb_kind DR\n real_server 10.0.0.2 80 {\n }\n}\n"
	for _, tc := range []struct {
		name, importer, in string
		want               string // the director block, "" for none
		note               string // a comment the output must hold
	}{
		{"set twice", "ipvsadm", "ipvsadm --set 3600 0 60\nipvsadm -A -t 10.0.0.1:80\nipvsadm --set 0 30 0\n",
			"director:\n  timeouts: {tcp: 3600s, tcp_fin: 30s, udp: 60s}\n", "line 1: ipvsadm --set 3600 0 60 (connection timeouts (--set): director.timeouts"},
		{"set zeros", "ipvsadm", "ipvsadm --set 0 0 0\nipvsadm -A -t 10.0.0.1:80\n", "", ""},
		{"lvs_timeouts", "keepalived", "global_defs {\n router_id x\n lvs_timeouts tcp 7200 udp 120\n}\n" + vs,
			"director:\n  timeouts: {tcp: 7200s, udp: 120s}\n", "# Connection timeouts, from lvs_timeouts in global_defs (line 1)"},
		{"later block names one", "keepalived", "global_defs {\n lvs_timeouts tcp 7200 udp 120\n}\n" + vs + "global_defs {\n lvs_timeouts udp 0 tcpfin 30\n}\n",
			"director:\n  timeouts: {tcp: 7200s, tcp_fin: 30s}\n", ""},
		{"unreadable words", "keepalived", "global_defs {\n lvs_timeouts tcp 9999999999 sctp 5 udp 50\n}\n" + vs,
			"director:\n  timeouts: {udp: 50s}\n", `line 2: lvs_timeouts tcp "9999999999" not read`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var res *Result
			var err error
			if tc.importer == "ipvsadm" {
				res, err = FromIpvsadm(strings.NewReader(tc.in), "t.sh", Options{})
			} else {
				res, err = FromKeepalived(strings.NewReader(tc.in), "k.conf", Options{})
			}
			if err != nil {
				t.Fatal(err)
			}
			out := string(res.YAML)
			if tc.want == "" && strings.Contains(out, "director:") || tc.want != "" && !strings.Contains(out, tc.want) {
				t.Fatalf("want director block %q:\n%s", tc.want, out)
			}
			if !strings.Contains(out, tc.note) {
				t.Errorf("output lacks %q:\n%s", tc.note, out)
			}
			rest, _ := split(t, res.YAML)
			cfg, _, err := director.ParseConfig("t.yaml", rest)
			if err != nil {
				t.Fatalf("the director refuses the import: %v\n%s", err, res.YAML)
			}
			if got := cfg.Director.Timeouts != nil; got != (tc.want != "") {
				t.Errorf("timeouts in the loaded config: %v, want %v", got, tc.want != "")
			}
		})
	}
	for in, want := range map[string]string{
		"ipvsadm --set 1 2\n":         "t.sh:1:9: --set option requires 3 timeout values",
		"ipvsadm --set 1 2 x\n":       `t.sh:1:19: invalid timeout value "x"`,
		"ipvsadm --set 1 2 3 4\n":     `t.sh:1:21: unexpected argument "4"`,
		"ipvsadm --set 2678401 0 0\n": `t.sh:1:15: invalid timeout value "2678401"`,
	} {
		if _, err := FromIpvsadm(strings.NewReader(in), "t.sh", Options{}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", in, err, want)
		}
	}
}
