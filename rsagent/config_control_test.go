package rsagent

import (
	"testing"
)

// The control socket defaults to the real-server unit's runtime directory;
// an empty string turns it off.
func TestControlSocketDefault(t *testing.T) {
	for _, tc := range []struct{ listen, want string }{
		{"", DefaultControl},
		{"listen: {metrics: 127.0.0.1:9723}\n", DefaultControl},
		{"listen: {control: \"\"}\n", ""},
		{"listen: {control: /run/x/rs.sock}\n", "/run/x/rs.sock"},
	} {
		c, _ := loadYAML(t, t.TempDir(), "realserver:\n  state_dir: STATE\n  vips: [{address: 10.0.0.100, mode: dr}]\n"+tc.listen)
		if c.Listen.Control != tc.want {
			t.Errorf("%q: control %q, want %q", tc.listen, c.Listen.Control, tc.want)
		}
	}
}
