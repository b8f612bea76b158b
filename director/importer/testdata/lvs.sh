#!/bin/sh
# Old-school LVS-NAT setup script
VIP=192.0.2.100
echo 1 > /proc/sys/net/ipv4/ip_forward
/sbin/ipvsadm -C
/sbin/ipvsadm --set 900 120 300
/sbin/ipvsadm -A -t 192.0.2.100:80 -s wrr -p 600 -M 255.255.0.0
/sbin/ipvsadm -a -t 192.0.2.100:80 -r 10.2.0.11:8080 -m -w 3 -x 5000 -y 4000
/sbin/ipvsadm -a -t 192.0.2.100:80 -r 10.2.0.12:8080 -m -w 1
/sbin/ipvsadm --add-service --udp-service 192.0.2.100:514 --scheduler sh --sched-flags sh-fallback
/sbin/ipvsadm --add-server --udp-service 192.0.2.100:514 --real-server 10.2.0.21:514 --masquerading
/sbin/ipvsadm --start-daemon master --mcast-interface eth1 --syncid 7
