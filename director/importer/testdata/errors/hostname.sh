#!/bin/sh
# The VIP comes from a command: what it prints on the director cannot be
# known here, so the import fails at 6:14 (the $VIP it needs).
VIP=$(hostname -I | cut -d' ' -f1)
ipvsadm -C
ipvsadm -A -t $VIP:80 -s rr
ipvsadm -a -t $VIP:80 -r 10.9.0.11 -g
