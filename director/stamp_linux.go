package director

import (
	"os"
	"syscall"
)

// stampOf returns what fi tells of a file's identity and last change.
func stampOf(fi os.FileInfo) fileStamp {
	st := fileStamp{size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	if s, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.ctime = s.Ctim.Nano()
		st.ino, st.dev = s.Ino, s.Dev
	}
	return st
}
