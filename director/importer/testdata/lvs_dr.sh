#!/bin/bash
# lvs_dr.sh - LVS-DR director, in the style of the LVS-HOWTO scripts.
# Usage: lvs_dr.sh {start|stop|restart|status}
# Imported as run with "start"; the table is in lvs_dr.sh.want.

IPVSADM=/sbin/ipvsadm
VIP=192.0.2.80
RIP1=10.5.0.11
RIP2=10.5.0.12
W_HEAVY=3
PORTS="http https"

[ -x $IPVSADM ] || { echo "ipvsadm is not installed"; exit 1; }

start() {
	echo 1 > /proc/sys/net/ipv4/ip_forward
	/sbin/ifconfig eth0:0 $VIP netmask 255.255.255.255 broadcast $VIP up
	$IPVSADM -C
	for PORT in $PORTS; do
		$IPVSADM -At $VIP:$PORT -s wrr
		$IPVSADM -a -t ${VIP}:${PORT} -r ${RIP1} -g -w $W_HEAVY
		for RIP in $RIP2 10.5.0.13; do
			$IPVSADM -a -t $VIP:$PORT -r $RIP -g -w 1
		done
	done
	sudo ipvsadm -A -u $VIP:53 -s rr
	sudo -u root ipvsadm -a -u $VIP:53 -r $RIP1 -g
}

stop() {
	$IPVSADM -C
	/sbin/ifconfig eth0:0 down
}

case "$1" in
start)
	start
	;;
stop)
	stop
	;;
restart)
	stop
	start
	;;
status)
	$IPVSADM -L -n
	;;
*)
	echo "Usage: $0 {start|stop|restart|status}"
	exit 1
	;;
esac
exit 0
