package ipvsadm

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
)

// DefaultServicesFile is where ipvsadm's getservbyname finds port names.
const DefaultServicesFile = "/etc/services"

// ErrUnknownPort is wrapped by errors for a port name that the services
// file does not list for the protocol.
var ErrUnknownPort = errors.New("unknown port name")

// Services maps port names to numbers per protocol, as the services(5)
// file does: "http 80/tcp www" gives http and www for tcp.
type Services map[string]map[string]uint16

// ReadServices parses a services(5) file.
func ReadServices(r io.Reader) (Services, error) {
	s := Services{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		num, proto, ok := strings.Cut(f[1], "/")
		if !ok {
			continue
		}
		p, err := strconv.ParseUint(num, 10, 16)
		if err != nil {
			continue
		}
		if s[proto] == nil {
			s[proto] = map[string]uint16{}
		}
		for _, name := range append([]string{f[0]}, f[2:]...) {
			// getservbyname returns the first entry that matches.
			if _, dup := s[proto][name]; !dup {
				s[proto][name] = uint16(p)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read services: %w", err)
	}
	return s, nil
}

// LoadServices reads the services file at path.
func LoadServices(path string) (Services, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("port names: %w", err)
	}
	defer f.Close()
	return ReadServices(f)
}

// lookup returns the port of name for proto ("tcp", "udp", "sctp").
func (s Services) lookup(proto, name string) (uint16, error) {
	if p, ok := s[proto][name]; ok {
		return p, nil
	}
	return 0, fmt.Errorf("%w %q for %s", ErrUnknownPort, name, proto)
}

// servicesOnce loads the default services file at the first port name.
type servicesOnce struct {
	s   Services
	err error
	did bool
}

func (o *servicesOnce) get() (Services, error) {
	if !o.did {
		o.did = true
		o.s, o.err = LoadServices(DefaultServicesFile)
		if errors.Is(o.err, fs.ErrNotExist) {
			o.err = fmt.Errorf("port names need %s (Debian package netbase): %w", DefaultServicesFile, o.err)
		}
	}
	return o.s, o.err
}
