package main

import (
	"bytes"
	"compress/gzip"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"

	"github.com/lvs-node/lvs-node/cmd/lvs-node/cli"
)

func main() {
	out := flag.String("out", "", "output directory")
	version := flag.String("version", "dev", "version named in the pages' footer")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "gen: -out DIR is required")
		os.Exit(2)
	}
	if err := generate(*out, *version); err != nil {
		fmt.Fprintf(os.Stderr, "gen: %v\n", err)
		os.Exit(1)
	}
}

func generate(out, version string) error {
	root := cli.Command(io.Discard, io.Discard)
	root.DisableAutoGenTag = true
	if err := manPages(root, filepath.Join(out, "man8"), version); err != nil {
		return err
	}
	return completions(root, filepath.Join(out, "completion"))
}

// manPages writes section 8 pages (lvs-node lives in /usr/sbin), compressed
// with gzip -9 and no name or time in the gzip header.
func manPages(root *cobra.Command, dir, version string) error {
	tmp, err := os.MkdirTemp("", "lvs-node-man")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	header := &doc.GenManHeader{Title: "LVS-NODE", Section: "8", Source: "lvs-node " + version, Manual: "System Administration"}
	if err := doc.GenManTree(root, header, tmp); err != nil {
		return fmt.Errorf("manual pages: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	pages, err := filepath.Glob(filepath.Join(tmp, "*.8"))
	if err != nil {
		return err
	}
	if len(pages) == 0 {
		return errors.New("manual pages: none generated")
	}
	for _, p := range pages {
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		var buf bytes.Buffer
		zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		if err != nil {
			return err
		}
		zw.ModTime = time.Time{}
		if _, err := zw.Write(b); err != nil {
			return err
		}
		if err := zw.Close(); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(p)+".gz"), buf.Bytes(), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// completions writes the files under the names the shells look for:
// bash-completion's completions/lvs-node, zsh's _lvs-node and fish's
// lvs-node.fish.
func completions(root *cobra.Command, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, gen := range map[string]func(io.Writer) error{
		"lvs-node":      func(w io.Writer) error { return root.GenBashCompletionV2(w, true) },
		"_lvs-node":     root.GenZshCompletion,
		"lvs-node.fish": func(w io.Writer) error { return root.GenFishCompletion(w, true) },
	} {
		var buf bytes.Buffer
		if err := gen(&buf); err != nil {
			return fmt.Errorf("completion %s: %w", name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), buf.Bytes(), 0o644); err != nil {
			return err
		}
	}
	return nil
}
