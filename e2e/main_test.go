//go:build e2e

package e2e

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lvs-node/lvs-node/lab"
)

// inGuest reports whether the tests run inside the lab VM.
func inGuest() bool { return os.Getenv("LVS_LAB_GUEST") == "1" }

func TestMain(m *testing.M) {
	flag.Parse()
	if inGuest() {
		os.Exit(m.Run())
	}
	os.Exit(runInVM())
}

// passFlags are the test flags that keep their meaning inside the VM.
var passFlags = []string{"test.run", "test.skip", "test.v", "test.count", "test.failfast", "test.short",
	"test.timeout", "test.bench", "test.benchtime", "test.benchmem", "test.cpu", "test.parallel"}

func runInVM() int {
	fail := func(err error) int {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		fmt.Println("FAIL")
		return 1
	}
	self, err := os.Executable()
	if err != nil {
		return fail(err)
	}
	tmp, err := os.MkdirTemp("", "lvs-node-e2e-")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "lvs-node")
	if err := buildLvsNode(bin); err != nil {
		return fail(err)
	}
	args := []string{"/lab/e2e.test"}
	timeout := 30 * time.Minute
	flag.Visit(func(f *flag.Flag) {
		for _, p := range passFlags {
			if f.Name == p {
				args = append(args, "-"+f.Name+"="+f.Value.String())
			}
		}
		if f.Name == "test.timeout" {
			if d, err := time.ParseDuration(f.Value.String()); err == nil && d > 0 {
				timeout = d + time.Minute
			}
		}
	})
	env := map[string]string{}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "LVS_") || k == "CI" {
			env[k] = v
		}
	}
	var extra []string
	if run := flag.Lookup("test.run").Value.String(); os.Getenv("LVS_LAB_KEEPALIVED") == "1" ||
		flag.Lookup("test.bench").Value.String() != "" || run == "" || strings.Contains(run, "ImportRoundTrip") {
		// keepalived and its libraries double the initramfs: only for
		// benchmarks and the importer round trip (which runs keepalived on
		// the samples).
		extra = append(extra, "/usr/sbin/keepalived")
	}
	if runsHATests(flag.Lookup("test.run").Value.String()) {
		extra = append(extra, lab.HAPeers()...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	files := map[string]string{"/usr/sbin/lvs-node": bin, "/lab/e2e.test": self}
	if err := addImporterSamples(files); err != nil {
		return fail(err)
	}
	res, err := lab.Run(ctx, lab.Config{
		Files:        files,
		Command:      args,
		Env:          env,
		HostBinaries: extra,
		Output:       os.Stdout,
		Log:          os.Stderr,
	})
	if err != nil {
		return fail(err)
	}
	return res.ExitCode
}

// buildLvsNode compiles the lvs-node command of this module, statically.
func buildLvsNode(out string) error {
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return fmt.Errorf("find module root: %w", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(gomod)))
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, "./cmd/lvs-node")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build lvs-node: %w\n%s", err, b)
	}
	return nil
}

// haPeerTests are the tests that run keepalived or BIRD in the VM.
func haPeerTests() []string {
	return []string{"TestHAKeepalivedFailover", "TestHABGPActiveActive", "TestDemo"}
}

// runsHATests reports whether the -run pattern selects a test that needs
// the HA peers in the VM (the whole suite does).
func runsHATests(pattern string) bool {
	if pattern == "" {
		return true
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return true
	}
	for _, name := range haPeerTests() {
		if re.MatchString(name) {
			return true
		}
	}
	return false
}
