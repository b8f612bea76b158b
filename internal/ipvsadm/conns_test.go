package ipvsadm

import (
	"strings"
	"testing"
)

// connTable is /proc/net/ip_vs_conn as the kernel writes it
// (ip_vs_conn_seq_show: "%-3s %08X %04X %08X %04X %s %04X %-11s %7u%s"
// for IPv4 clients, %pI6 for IPv6 ones and for IPv6 real servers).
const connTable = "Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData\n" +
	"TCP 0A000002 D431 0A000064 0050 0A00000B 0050 ESTABLISHED     897\n" +
	"TCP 0A000002 D432 0A000064 0050 2001:0db8:0000:0000:0000:0000:0000:0011 0050 FIN_WAIT         59\n" +
	"UDP 0A000002 9C40 0A000065 13C4 0A00000C 13C4 UDP              42 sip 3848276298220188511@10.0.0.2\n" +
	"IP  0A000002 0000 0A000064 0000 0A00000B 0000 NONE          5999\n" +
	"TCP 2001:0db8:0000:0000:0000:0000:0000:0002 C350 2001:0db8:0000:0000:0000:0000:0000:0001 01BB 0A00000B 01BB SYN_RECV          3\n"

func TestWriteConns(t *testing.T) {
	var b strings.Builder
	if err := WriteConns(&b, strings.NewReader(connTable), ConnOptions{}); err != nil {
		t.Fatal(err)
	}
	want := "IPVS connection entries\n" +
		"pro expire state       source             virtual            destination\n" +
		"TCP 14:57  ESTABLISHED 10.0.0.2:54321     10.0.0.100:80      10.0.0.11:80\n" +
		"TCP 00:59  FIN_WAIT    10.0.0.2:54322     10.0.0.100:80      [2001:db8::11]:80\n" +
		"UDP 00:42  UDP         10.0.0.2:40000     10.0.0.101:5060    10.0.0.12:5060\n" +
		"IP  99:59  NONE        10.0.0.2:0         10.0.0.100:0       10.0.0.11:0\n" +
		"TCP 00:03  SYN_RECV    [2001:db8::2]:50000 [2001:db8::1]:443  10.0.0.11:443\n"
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}

	b.Reset()
	if err := WriteConns(&b, strings.NewReader(connTable), ConnOptions{PersistentConn: true}); err != nil {
		t.Fatal(err)
	}
	want = "IPVS connection entries\n" +
		"pro expire state       source             virtual            destination        pe name          pe_data\n" +
		"TCP 14:57  ESTABLISHED 10.0.0.2:54321     10.0.0.100:80      10.0.0.11:80\n" +
		"TCP 00:59  FIN_WAIT    10.0.0.2:54322     10.0.0.100:80      [2001:db8::11]:80\n" +
		"UDP 00:42  UDP         10.0.0.2:40000     10.0.0.101:5060    10.0.0.12:5060   sip                3848276298220188511@10.0.0.2\n" +
		"IP  99:59  NONE        10.0.0.2:0         10.0.0.100:0       10.0.0.11:0\n" +
		"TCP 00:03  SYN_RECV    [2001:db8::2]:50000 [2001:db8::1]:443  10.0.0.11:443\n"
	if b.String() != want {
		t.Errorf("--persistent-conn got:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestWriteConnsRefusesGarbage(t *testing.T) {
	for _, in := range []string{"", "title\nTCP 0A000002 zz\n", "title\n\n"} {
		var b strings.Builder
		if err := WriteConns(&b, strings.NewReader(in), ConnOptions{}); err == nil {
			t.Errorf("%q accepted:\n%s", in, b.String())
		}
	}
}
