package config

import (
	"fmt"
	yaml "go.yaml.in/yaml/v3"
	"strings"
	"testing"
)

type benchRS struct {
	Address string `yaml:"address"`
	Port    uint16 `yaml:"port"`
	Weight  int    `yaml:"weight"`
}
type benchVS struct {
	Name      string    `yaml:"name"`
	VIP       string    `yaml:"vip"`
	Port      uint16    `yaml:"port"`
	Scheduler string    `yaml:"scheduler"`
	RS        []benchRS `yaml:"real_servers"`
}
type benchFile struct {
	VS []benchVS `yaml:"virtual_services"`
}

func bigConfig(n int) []byte {
	var b strings.Builder
	b.WriteString("virtual_services:\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "  - name: s%d\n    vip: 10.%d.%d.1\n    port: 80\n    scheduler: wlc\n    real_servers:\n", i, i/256, i%256)
		for j := 0; j < 10; j++ {
			fmt.Fprintf(&b, "      - {address: 10.200.%d.%d, port: 80, weight: 100}\n", i%256, j)
		}
	}
	return []byte(b.String())
}

func BenchmarkDecode10k(b *testing.B) {
	data := bigConfig(10000)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		var f benchFile
		if _, err := Decode("big.yaml", data, &f); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkYAMLNodeOnly10k(b *testing.B) {
	data := bigConfig(10000)
	for b.Loop() {
		var n yaml.Node
		if err := yaml.Unmarshal(data, &n); err != nil {
			b.Fatal(err)
		}
	}
}
