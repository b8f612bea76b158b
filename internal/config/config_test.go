package config

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

type rs struct {
	Address string `yaml:"address"`
	Port    uint16 `yaml:"port"`
	Weight  int    `yaml:"weight"`
}

type sample struct {
	Settings struct {
		Interval Duration `yaml:"resync_interval"`
		Enabled  bool     `yaml:"enabled"`
	} `yaml:"settings"`
	Services []struct {
		Name    string   `yaml:"name"`
		Servers []rs     `yaml:"real_servers"`
		Flags   []string `yaml:"flags"`
		Limit   *int     `yaml:"limit"`
	} `yaml:"services"`
	Labels map[string]string `yaml:"labels"`
}

func decode(t *testing.T, src string) (*sample, *Doc, Errors) {
	t.Helper()
	var s sample
	doc, err := Decode("test.yaml", []byte(src), &s)
	if err == nil {
		return &s, doc, nil
	}
	errs := AsErrors(err)
	if errs == nil {
		t.Fatalf("error is not config.Errors: %v", err)
	}
	return &s, doc, errs
}

func TestDecodeValid(t *testing.T) {
	s, doc, errs := decode(t, `
settings:
  resync_interval: 1m30s
  enabled: yes
services:
  - name: web
    real_servers:
      - {address: 10.0.0.11, port: 80, weight: 100}
      - address: 10.0.0.12
        port: 8080
    flags: [a, b]
    limit: 7
labels: {team: net}
`)
	if errs != nil {
		t.Fatalf("unexpected errors: %v", errs)
	}
	if s.Settings.Interval.D() != 90*time.Second || !s.Settings.Enabled {
		t.Fatalf("settings = %+v", s.Settings)
	}
	if len(s.Services) != 1 || len(s.Services[0].Servers) != 2 || s.Services[0].Servers[1].Port != 8080 {
		t.Fatalf("services = %+v", s.Services)
	}
	if s.Services[0].Limit == nil || *s.Services[0].Limit != 7 || s.Labels["team"] != "net" {
		t.Fatalf("limit/labels = %v %v", s.Services[0].Limit, s.Labels)
	}
	if p := doc.Pos("services[0].real_servers[1].port"); p.Line != 10 || p.Column != 9 {
		t.Fatalf("Pos(port) = %v, want 10:9", p)
	}
	// A missing key is placed at its nearest parent.
	if p := doc.Pos("services[0].real_servers[1].weight"); p.Line != 9 {
		t.Fatalf("Pos(missing weight) = %v, want line 9", p)
	}
	if !doc.Has("settings.enabled") || doc.Has("services[0].real_servers[1].weight") {
		t.Fatal("Has reports the wrong keys")
	}
	if got := strings.Join(doc.TopKeys(), ","); got != "settings,services,labels" {
		t.Fatalf("TopKeys = %s", got)
	}
}

func TestDecodeErrorsNamePositionAndPath(t *testing.T) {
	cases := []struct {
		name, src string
		want      []string // each an exact error line
	}{
		{"unknown key", "settings:\n  resync_intervall: 2s\n",
			[]string{`test.yaml:2:3: settings.resync_intervall: unknown key "resync_intervall" (known keys here: enabled, resync_interval)`}},
		{"wrong type", "services:\n  - name: web\n    real_servers:\n      - {address: a, port: http}\n",
			[]string{`test.yaml:4:28: services[0].real_servers[0].port: want a whole number from 0 to 65535, got "http"`}},
		{"out of range", "services:\n  - real_servers: [{port: 70000}]\n",
			[]string{`test.yaml:2:27: services[0].real_servers[0].port: want a whole number from 0 to 65535, got "70000"`}},
		{"bad duration", "settings:\n  resync_interval: 30\n",
			[]string{`test.yaml:2:20: settings.resync_interval: want a duration such as 2s, 500ms or 1m30s, got "30"`}},
		{"negative duration", "settings:\n  resync_interval: -5s\n",
			[]string{`test.yaml:2:20: settings.resync_interval: duration must not be negative, got "-5s"`}},
		{"bool", "settings:\n  enabled: maybe\n",
			[]string{`test.yaml:2:12: settings.enabled: want true or false, got "maybe"`}},
		{"list expected", "services: web\n",
			[]string{`test.yaml:1:11: services: want a list, got "web"`}},
		{"mapping expected", "settings: [1]\n",
			[]string{`test.yaml:1:11: settings: want a mapping, got a list`}},
		{"duplicate key", "settings:\n  enabled: true\n  enabled: false\n",
			[]string{`test.yaml:3:3: settings.enabled: key "enabled" is set twice`}},
		{"several at once", "settings:\n  nope: 1\n  resync_interval: x\nextra: 2\n",
			[]string{
				`test.yaml:2:3: settings.nope: unknown key "nope" (known keys here: enabled, resync_interval)`,
				`test.yaml:3:20: settings.resync_interval: want a duration such as 2s, 500ms or 1m30s, got "x"`,
				`test.yaml:4:1: extra: unknown key "extra" (known keys here: labels, services, settings)`,
			}},
		{"syntax", "settings:\n  enabled: [\n", []string{"test.yaml:"}},
		{"empty", "", []string{"test.yaml: file is empty"}},
		{"two documents", "settings: {}\n---\nsettings: {}\n", []string{"test.yaml:2:1: only one YAML document is allowed"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, errs := decode(t, c.src)
			if len(errs) != len(c.want) {
				t.Fatalf("got %d errors, want %d:\n%v", len(errs), len(c.want), errs)
			}
			for i, w := range c.want {
				got := errs[i].Error()
				if c.name == "syntax" {
					if !strings.HasPrefix(got, w) || !strings.Contains(got, "YAML syntax") {
						t.Fatalf("error %d = %q", i, got)
					}
					continue
				}
				if got != w {
					t.Fatalf("error %d\n got: %s\nwant: %s", i, got, w)
				}
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	var s sample
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"), &s)
	if err == nil || !os.IsNotExist(unwrapAll(err)) {
		t.Fatalf("Load of a missing file = %v", err)
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
}

func TestAliasesAndNulls(t *testing.T) {
	s, _, errs := decode(t, `
services:
  - name: a
    real_servers: &rs
      - {address: x, port: 1}
  - name: b
    real_servers: *rs
    limit: ~
`)
	if errs != nil {
		t.Fatal(errs)
	}
	if len(s.Services[1].Servers) != 1 || s.Services[1].Limit != nil {
		t.Fatalf("alias/null handling: %+v", s.Services[1])
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte("settings:\n  resync_interval: 2s\nservices:\n  - name: x\n    real_servers: [{port: 1}]\n"))
	f.Add([]byte("a: &x [1, *x]\n"))
	f.Add([]byte("services: [{name: {a: b}}]\nlabels: {x: [1]}\n"))
	f.Add([]byte("{\"settings\": {\"enabled\": \"yes\"}}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var s sample
		doc, err := Decode("fuzz.yaml", data, &s)
		if doc == nil {
			t.Fatal("nil Doc")
		}
		if err != nil {
			errs := AsErrors(err)
			if len(errs) == 0 {
				t.Fatalf("error without entries: %v", err)
			}
			for _, e := range errs {
				if e.Pos.File != "fuzz.yaml" || e.Msg == "" {
					t.Fatalf("error without file or message: %#v", e)
				}
			}
		}
	})
}

func TestCombine(t *testing.T) {
	dec := Errors{{Pos: Pos{File: "f", Line: 3, Column: 1}, Path: "a.b", Msg: "bad type"}}
	val := Errors{
		{Pos: Pos{File: "f", Line: 3, Column: 1}, Path: "a.b", Msg: "out of range"},
		{Pos: Pos{File: "f", Line: 4, Column: 1}, Path: "a.b[0].c", Msg: "under a failed key"},
		{Pos: Pos{File: "f", Line: 1, Column: 1}, Path: "a.bc", Msg: "a sibling with a longer name"},
		{Pos: Pos{File: "f", Line: 9, Column: 1}, Path: "z", Msg: "elsewhere"},
	}
	got := AsErrors(Combine(dec, val))
	var lines []string
	for _, e := range got {
		lines = append(lines, e.Error())
	}
	want := "f:1:1: a.bc: a sibling with a longer name|f:3:1: a.b: bad type|f:9:1: z: elsewhere"
	if strings.Join(lines, "|") != want {
		t.Fatalf("Combine = %s\nwant      %s", strings.Join(lines, "|"), want)
	}
	if Combine(nil, nil) != nil {
		t.Fatal("Combine(nil, nil) != nil")
	}
	plain := os.ErrNotExist
	if Combine(plain, val) != plain {
		t.Fatal("a non-file error must be returned as is")
	}
}

func TestIntegersAreDecimalHexOnlyWhereTagged(t *testing.T) {
	type marks struct {
		Weight int64   `yaml:"weight"`
		Port   uint16  `yaml:"port"`
		Mark   *uint32 `yaml:"mark,hex"`
		Range  struct {
			First uint32 `yaml:"first"`
		} `yaml:"range,hex"`
	}
	cases := []struct {
		src, want string // want: the value line, or the error's message
	}{
		{"weight: 10", "weight=10"},
		{"weight: -3", "weight=-3"},
		{"weight: +7", "weight=7"},
		{"weight: 0", "weight=0"},
		{"weight: 010", `weight: want a decimal whole number without leading zeros (is 010 ten or eight? write 10 or 8), got "010"`},
		{"weight: 0o10", `weight: want a decimal whole number, got "0o10"`},
		{"weight: 0x10", `weight: want a decimal whole number, got "0x10"`},
		{"weight: 0b10", `weight: want a decimal whole number, got "0b10"`},
		{"weight: 1_000", `weight: want a whole number, got "1_000"`},
		{"weight: 0_1", `weight: want a decimal whole number, got "0_1"`},
		{"port: 0080", `port: want a decimal whole number without leading zeros (is 010 ten or eight? write 10 or 8), got "0080"`},
		{"mark: 0x4c56", "mark=19542"},
		{"mark: 0X10", "mark=16"},
		{"mark: 100", "mark=100"},
		{"mark: 010", `mark: want a decimal whole number or 0x followed by hex digits without leading zeros (is 010 ten or eight? write 10 or 8), got "010"`},
		{"mark: 0o10", `mark: want a decimal whole number or 0x followed by hex digits, got "0o10"`},
		{"mark: 0xfg", `mark: want a decimal whole number or 0x followed by hex digits, got "0xfg"`},
		{"mark: 0x", `mark: want a whole number from 0 to 4294967295, got "0x"`},
		{"range: {first: 0x30ff}", "first=12543"},
	}
	for _, c := range cases {
		var m marks
		_, err := Decode("m.yaml", []byte(c.src+"\n"), &m)
		got := ""
		switch {
		case err != nil:
			es := AsErrors(err)
			got = es[0].Path + ": " + es[0].Msg
		case m.Mark != nil:
			got = "mark=" + strconv.FormatUint(uint64(*m.Mark), 10)
		case m.Range.First != 0:
			got = "first=" + strconv.FormatUint(uint64(m.Range.First), 10)
		default:
			got = "weight=" + strconv.FormatInt(m.Weight, 10)
		}
		if got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.src, got, c.want)
		}
	}
}
