#!/bin/sh
# Which rules are programmed depends on a file of the director: the
# import fails at 5:1 instead of guessing.
ipvsadm -C
if [ -f /etc/lvs/backup ]; then
	ipvsadm -A -t 192.0.2.99:80 -s rr
else
	ipvsadm -A -t 192.0.2.99:80 -s wrr
fi
