package kerneltest

import (
	"testing"

	"github.com/vishvananda/netns"
)

func TestFreshNetnsIsNewAndRestored(t *testing.T) {
	before, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer before.Close()
	t.Run("inside", func(t *testing.T) {
		// Cleanups run last-in first-out: this one runs after FreshNetns's.
		t.Cleanup(func() {
			cur, err := netns.Get()
			if err != nil {
				t.Fatal(err)
			}
			defer cur.Close()
			if !cur.Equal(before) {
				t.Error("the namespace was not restored when the test ended")
			}
		})
		ns := FreshNetns(t)
		cur, err := netns.Get()
		if err != nil {
			t.Fatal(err)
		}
		defer cur.Close()
		if !cur.Equal(ns) || cur.Equal(before) {
			t.Fatal("the test thread is not in the new namespace")
		}
	})
}
