#!/bin/sh
### BEGIN INIT INFO
# Provides:          lvs
# Required-Start:    $network
# Default-Start:     2 3 4 5
# Short-Description: LVS director rules
### END INIT INFO
# Imported as run with "start"; the table is in init-lvs.sh.want.

. /lib/lsb/init-functions

IPV="/usr/sbin/ipvsadm"
VIP=198.51.100.80
RS="10.6.0.11 10.6.0.12"

add_https() {
	$IPV --add-service --tcp-service $1:443 --scheduler sh --sched-flags sh-port --persistent 1800
	for r in $RS; do
		$IPV --add-server --tcp-service=$1:443 --real-server $r:443 --gatewaying --weight 10
	done
}

case "$1" in
  start|restart|force-reload)
	log_daemon_msg "Starting LVS" "lvs"
	$IPV --clear
	add_https $VIP
	$IPV -e -t $VIP:443 -r 10.6.0.12 -g -w 5
	$IPV -A -f 7 -s lc && $IPV -a -f 7 -r 10.6.0.21 -m -w 1
	$IPV --set 3600 0 60 || true
	log_end_msg $?
	;;
  stop)
	log_daemon_msg "Stopping LVS" "lvs"
	$IPV -C
	log_end_msg $?
	;;
  status)
	$IPV -Ln
	;;
  *)
	echo "Usage: /etc/init.d/lvs {start|stop|restart|force-reload|status}" >&2
	exit 3
	;;
esac
