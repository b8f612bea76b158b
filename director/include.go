package director

import (
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"weak"

	"github.com/lvs-node/lvs-node/internal/config"
)

// Loader reads director.yaml and the files its include: patterns name,
// and remembers what it read. A reload (Load again) re-reads only the
// files whose size, times or identity changed and whose content differs
// (by hash), parses them in parallel, and checks their services against
// the others through an index of what every service claims (see claims),
// so that its cost follows what changed, not the size of the table. The
// configuration it returns tells the Engine which services may differ
// from the previous one, so that the Engine plans those alone. A load
// that finds a problem changes nothing: the Loader keeps what it had.
type Loader struct {
	path string
	seed maphash.Seed

	// The last configuration loaded without a problem, and what it was
	// made of.
	last   *Config
	main   *mainFile
	files  []*serviceFile // included, in order
	claims *claims
	reads  atomic.Int64 // files read, for tests and logs
	// trustAfter is how long after its last change a file's stat is
	// trusted to tell that it did not change (see fileStamp).
	trustAfter time.Duration
}

// mainFile is director.yaml as read.
type mainFile struct {
	cfg   *Config // its own settings and virtual services, validated
	doc   *config.Doc
	list  *serviceFile // its virtual services, for claims
	stamp fileStamp
}

// NewLoader returns a Loader of the configuration file at path.
func NewLoader(path string) *Loader {
	return &Loader{path: path, seed: maphash.MakeSeed(), trustAfter: 2 * time.Second}
}

// Load reads the configuration and the files it includes, and returns it
// with the main file's document. Every problem of every file is returned
// together as config.Errors, each naming its file, line and column.
func (l *Loader) Load() (*Config, *config.Doc, error) { return l.load(nil) }

// fileStamp is what is known of a file as it was read: enough of its
// metadata to tell without reading it that it has not changed, and the
// hash of its content.
type fileStamp struct {
	size         int64
	mtime, ctime int64
	ino, dev     uint64
	hash         uint64
	// trusted: the file had not been modified for a while when it was
	// read, so an unchanged stat means an unchanged file. A file written
	// within the granularity of its timestamps could change again with the
	// same stat; such a file is read again.
	trusted bool
}

// same reports whether the file, now stat'ed as s, is known to be as it
// was read with stamp f.
func (f fileStamp) same(s fileStamp) bool {
	return f.trusted && f.size == s.size && f.mtime == s.mtime && f.ctime == s.ctime && f.ino == s.ino && f.dev == s.dev
}

// read reads path and stamps it.
func (l *Loader) read(path string) ([]byte, fileStamp, error) {
	l.reads.Add(1)
	f, err := os.Open(path)
	if err != nil {
		return nil, fileStamp{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fileStamp{}, err
	}
	st := stampOf(fi)
	data := make([]byte, 0, fi.Size()+512)
	for {
		if len(data) == cap(data) {
			data = append(data, 0)[:len(data)]
		}
		n, err := f.Read(data[len(data):cap(data)])
		data = data[:len(data)+n]
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fileStamp{}, err
		}
	}
	st.hash = maphash.Bytes(l.seed, data)
	st.trusted = time.Since(time.Unix(0, st.mtime)) >= l.trustAfter && time.Since(time.Unix(0, st.ctime)) >= l.trustAfter
	return data, st, nil
}

// readMain returns the main file: the last one when it has not changed,
// else the file parsed again (data: its content, already read).
func (l *Loader) readMain(data []byte) (*mainFile, error) {
	var st fileStamp
	if data == nil {
		if m := l.main; m != nil {
			if fi, err := os.Stat(l.path); err == nil && m.stamp.same(stampOf(fi)) {
				return m, nil
			}
		}
		var err error
		if data, st, err = l.read(l.path); err != nil {
			return &mainFile{doc: &config.Doc{File: l.path}}, fmt.Errorf("read config: %w", err)
		}
		if m := l.main; m != nil && m.stamp.hash == st.hash && m.stamp.size == st.size {
			return &mainFile{cfg: m.cfg, doc: m.doc, list: m.list, stamp: st}, nil
		}
	}
	var c Config
	doc, err := config.LoadData(l.path, data, &c, c.validate)
	m := &mainFile{cfg: &c, doc: doc, stamp: st}
	m.list = &serviceFile{path: l.path, doc: doc, prefix: "virtual_services", rank: -1, services: c.VirtualServices}
	return m, err
}

// match is an included file: its path and the pattern that named it.
type match struct {
	path string
	rank int
}

// expand lists the files the include patterns of m name: each pattern's
// matches sorted, in the order of the patterns, each file once.
// Directories are skipped. A pattern whose directory is missing is an
// error: a mistyped path would otherwise remove every service the files
// hold.
func (l *Loader) expand(m *mainFile) ([]match, config.Errors) {
	var out []match
	var errs config.Errors
	seen := map[string]bool{}
	for i, pat := range m.cfg.Include {
		p := config.Index("include", i)
		if _, err := filepath.Match(pat, ""); pat == "" || err != nil {
			continue // reported by validation
		}
		if !filepath.IsAbs(pat) {
			pat = filepath.Join(filepath.Dir(l.path), pat)
		}
		dir := filepath.Dir(pat)
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			if err == nil {
				err = errors.New("not a directory")
			}
			errs = append(errs, m.doc.Errorf(p, "directory %s: %v", dir, unwrapPath(err)))
			continue
		}
		names, _ := filepath.Glob(pat) // the pattern is valid
		for _, name := range names {   // Glob sorts them
			if seen[name] {
				continue
			}
			if fi, err := os.Stat(name); err == nil && fi.IsDir() {
				continue
			}
			seen[name] = true
			out = append(out, match{path: name, rank: i})
		}
	}
	return out, errs
}

// unwrapPath drops the path an *fs.PathError repeats.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// parseIncluded decodes and validates an included file: a list of virtual
// services, or nothing (an empty file, or only comments).
func parseIncluded(path string, data []byte, rank int, st fileStamp) (*serviceFile, config.Errors) {
	f := &serviceFile{path: path, prefix: "", rank: rank, stat: st}
	if config.Blank(data) {
		f.doc = &config.Doc{File: path}
		return f, nil
	}
	doc, err := config.LoadData(path, data, &f.services, func(doc *config.Doc) error {
		v := &validator{doc: doc}
		for i := range f.services {
			v.service(&f.services[i], config.Index("", i))
		}
		return v.errs.Err()
	})
	f.doc = doc
	if err != nil && doc.TopKeys() != nil {
		return f, config.Errors{doc.Errorf("", "an included file is a list of virtual services (\"- name: ...\"), not a mapping")}
	}
	if err != nil {
		if es := config.AsErrors(err); es != nil {
			return f, es
		}
		return f, config.Errors{{Pos: config.Pos{File: path}, Msg: err.Error()}}
	}
	// Positions are needed again only to report a problem: the document
	// is parsed again then, rather than kept.
	doc.Release()
	return f, nil
}

// load is Load; data, when not nil, is the main file's content.
func (l *Loader) load(data []byte) (*Config, *config.Doc, error) {
	m, err := l.readMain(data)
	if m.cfg == nil || len(m.cfg.Include) == 0 && err != nil {
		return nil, m.doc, err
	}
	var errs config.Errors
	if err != nil {
		if errs = config.AsErrors(err); errs == nil {
			return nil, m.doc, err
		}
	}
	if len(m.cfg.Include) == 0 {
		// Everything is in one file, validated whole.
		cfg := m.cfg
		if l.main != nil && m.cfg == l.main.cfg && l.last != nil {
			c := *l.last // the same file: the same services
			c.from = &delta{base: weak.Make(l.last)}
			cfg = &c
		}
		l.last, l.main, l.files, l.claims = cfg, m, nil, nil
		m.doc.Release()
		return cfg, m.doc, nil
	}

	matches, xerrs := l.expand(m)
	errs = append(errs, xerrs...)
	files, ferrs := l.readIncluded(matches)
	errs = append(errs, ferrs...)

	// The files that leave and enter the configuration.
	var removed, added []*serviceFile
	if l.main == nil || m.list != l.main.list {
		added = append(added, m.list)
		if l.main != nil {
			removed = append(removed, l.main.list)
		}
	}
	for _, f := range files {
		if !slices.Contains(l.files, f) {
			added = append(added, f)
		}
	}
	for _, f := range l.files {
		if !slices.Contains(files, f) {
			removed = append(removed, f)
		}
	}
	cl := l.claims
	if cl == nil || l.main == nil || l.main.list == nil || len(l.main.cfg.Include) == 0 {
		cl, removed = newClaims(), nil
		added = append([]*serviceFile{m.list}, files...)
	}
	errs = append(errs, cl.check(&m.cfg.Director, removed, added)...)
	if len(errs) > 0 {
		errs = sortErrors(errs, m, files)
		for _, f := range files {
			f.doc.Release() // parsed again to report a problem
		}
		return nil, m.doc, errs
	}
	cl.commit(removed, added)

	cfg := *m.cfg
	n := len(m.list.services)
	for _, f := range files {
		n += len(f.services)
	}
	cfg.VirtualServices = make([]VirtualService, 0, n)
	cfg.VirtualServices = append(cfg.VirtualServices, m.list.services...)
	for _, f := range files {
		cfg.VirtualServices = append(cfg.VirtualServices, f.services...)
	}
	cfg.from = l.delta(m, files)
	l.last, l.main, l.files, l.claims = &cfg, m, files, cl
	m.doc.Release()
	for _, f := range files {
		f.doc.Release()
	}
	return &cfg, m.doc, nil
}

// readIncluded returns the included files, those that did not change as
// they were, the others read and parsed again (in parallel).
func (l *Loader) readIncluded(matches []match) ([]*serviceFile, config.Errors) {
	old := make(map[string]*serviceFile, len(l.files))
	for _, f := range l.files {
		old[f.path] = f
	}
	files := make([]*serviceFile, len(matches))
	errs := make([]config.Errors, len(matches))
	var todo []int
	for i, mt := range matches {
		if f := old[mt.path]; f != nil && f.rank == mt.rank {
			if fi, err := os.Stat(mt.path); err == nil && f.stat.same(stampOf(fi)) {
				files[i] = f
				continue
			}
		}
		todo = append(todo, i)
	}
	work := make(chan int)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(todo)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				mt := matches[i]
				data, st, err := l.read(mt.path)
				if err != nil {
					errs[i] = config.Errors{{Pos: config.Pos{File: mt.path}, Msg: fmt.Sprintf("read included file: %v", unwrapPath(err))}}
					files[i] = &serviceFile{path: mt.path, rank: mt.rank, doc: &config.Doc{File: mt.path}}
					continue
				}
				if f := old[mt.path]; f != nil && f.rank == mt.rank && f.stat.hash == st.hash && f.stat.size == st.size {
					// Touched, not changed: the same file, stamped anew.
					g := *f
					g.stat = st
					files[i] = &g
					continue
				}
				files[i], errs[i] = parseIncluded(mt.path, data, mt.rank, st)
			}
		}()
	}
	for _, i := range todo {
		work <- i
	}
	close(work)
	wg.Wait()
	var all config.Errors
	for _, e := range errs {
		all = append(all, e...)
	}
	return files, all
}

// sortErrors orders problems by file (the main file, then the included
// files in order) and position.
func sortErrors(errs config.Errors, m *mainFile, files []*serviceFile) config.Errors {
	order := map[string]int{m.doc.File: -1}
	for i, f := range files {
		if _, ok := order[f.path]; !ok {
			order[f.path] = i
		}
	}
	slices.SortStableFunc(errs, func(a, b *config.Error) int {
		if c := order[a.Pos.File] - order[b.Pos.File]; c != 0 {
			return c
		}
		if a.Pos.Line != b.Pos.Line {
			return a.Pos.Line - b.Pos.Line
		}
		return a.Pos.Column - b.Pos.Column
	})
	return errs
}

// delta tells how a configuration differs from base, the one loaded
// before it: every service is at the same position as in base, and those
// at positions other than changed are the same, unchanged. base is weak:
// configurations do not keep their predecessors alive.
type delta struct {
	base    weak.Pointer[Config]
	changed []int
}

// from reports whether d says how a configuration differs from c.
func (d *delta) from(c *Config) bool { return d != nil && c != nil && d.base.Value() == c }

// delta returns how the configuration made of m and files differs from
// the last one, or nil when services moved (a file added or removed, or
// one whose number of services changed).
func (l *Loader) delta(m *mainFile, files []*serviceFile) *delta {
	if l.last == nil || l.main == nil || l.main.list == nil || len(files) != len(l.files) ||
		len(m.list.services) != len(l.main.list.services) {
		return nil
	}
	d := &delta{base: weak.Make(l.last)}
	pos := 0
	mark := func(f, was *serviceFile) bool {
		if len(f.services) != len(was.services) || f.path != was.path {
			return false
		}
		if f != was && (f.services == nil || &f.services[0] != &was.services[0]) {
			for i := range f.services {
				d.changed = append(d.changed, pos+i)
			}
		}
		pos += len(f.services)
		return true
	}
	if !mark(m.list, l.main.list) {
		return nil
	}
	for i, f := range files {
		if !mark(f, l.files[i]) {
			return nil
		}
	}
	return d
}

// includes checks the include patterns (their files are read by a
// Loader).
func (v *validator) includes(patterns []string) {
	for i, pat := range patterns {
		p := config.Index("include", i)
		if pat == "" {
			v.errorf(p, "must not be empty")
			continue
		}
		if _, err := filepath.Match(pat, ""); err != nil {
			v.errorf(p, "bad pattern %q: %v", pat, err)
		}
	}
}
