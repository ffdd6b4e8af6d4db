//! The ramdisk's userland scripts, run by busybox sh: `/init` (PID 1) and the udhcpc hook.
//! Every line init prints starts with [`CONSOLE_PREFIX`], on the kernel console (the last
//! `console=` argument, ttyS0 in our boot configs), so a serial log shows how far a boot got.

/// What each init line starts with.
pub const CONSOLE_PREFIX: &str = "IRONCAST-RAMDISK:";
/// The line init prints just before it starts the agent.
pub const AGENT_STARTING: &str = "IRONCAST-RAMDISK: starting ironcast agent";

/// Where the scripts and the module list live inside the initramfs.
pub const MODULE_LIST: &str = "etc/ironcast/modules";
pub const UDHCPC_SCRIPT: &str = "etc/ironcast/udhcpc.script";

/// PID 1: mount the kernel file systems, load the modules in order, DHCP on every NIC, then run
/// `ironcast agent` (it reads `ironcast.url=`, `ironcast.node=`, `ironcast.token=` from
/// /proc/cmdline). The agent is restarted if it exits: PID 1 exiting would panic the kernel.
pub const INIT: &str = r#"#!/bin/busybox sh
/bin/busybox mkdir -p /bin /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/root TMPDIR=/tmp
say() { echo "IRONCAST-RAMDISK: $*"; }
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /run /tmp /root
mount -t devpts devpts /dev/pts
say "kernel $(uname -r), $(grep -c ^processor /proc/cpuinfo) CPU(s), $(awk '/MemTotal/ {print int($2/1024)}' /proc/meminfo) MiB"
loaded=0
while read -r m; do
  [ -n "$m" ] || continue
  if insmod "/lib/modules/$m.ko" 2>/dev/null; then loaded=$((loaded + 1)); fi
done < /etc/ironcast/modules
say "loaded $loaded kernel modules"
# NICs appear as their drivers probe; give them a few seconds.
i=0
while [ $i -lt 50 ]; do
  nics=$(ls /sys/class/net | grep -v '^lo$')
  [ -n "$nics" ] && break
  sleep 0.1; i=$((i + 1))
done
ip link set lo up
for n in $nics; do
  ip link set "$n" up
  # -b: once a lease is bound (or 10 tries failed), udhcpc keeps running in the background.
  udhcpc -i "$n" -s /etc/ironcast/udhcpc.script -t 10 -T 1 -A 3 -b 2>/dev/null &
done
wait
say "network: $(ip -o -4 addr show scope global | awk '{printf "%s %s ", $2, $4}')"
# What the agent will read (the token stays secret).
for w in $(cat /proc/cmdline); do
  case "$w" in ironcast.url=*|ironcast.node=*) say "agent argument $w" ;; esac
done
while :; do
  say "starting ironcast agent"
  /bin/ironcast agent
  say "ironcast agent exited with status $?; restarting in 5 s"
  sleep 5
done
"#;

/// udhcpc's hook (busybox's simple.script, reduced): set address, routes and resolvers.
pub const UDHCPC: &str = r#"#!/bin/sh
case "$1" in
  deconfig)
    ip -4 addr flush dev "$interface"
    ip link set "$interface" up
    ;;
  bound|renew)
    ip -4 addr flush dev "$interface"
    ip -4 addr add "$ip/${mask:-24}" ${broadcast:+broadcast "$broadcast"} dev "$interface"
    metric=0
    for r in $router; do
      ip -4 route add default via "$r" dev "$interface" metric "$metric"
      metric=$((metric + 1))
    done
    : > "/run/resolv.$interface"
    [ -n "$domain" ] && echo "search $domain" >> "/run/resolv.$interface"
    for d in $dns; do echo "nameserver $d" >> "/run/resolv.$interface"; done
    cat /run/resolv.* > /etc/resolv.conf
    echo "IRONCAST-RAMDISK: $interface bound $ip/${mask:-24} via ${router:-no router}"
    ;;
esac
exit 0
"#;
