#!/usr/bin/env bash
# vm-test.sh: boots Debian's own kernel under qemu with this machine's root shared read-only
# (9p + a writable overlay) and a pure cgroup v2 hierarchy laid out as systemd lays it out,
# then runs tests/vm/guest.sh there as (a) root at the root, (b) a root service with a
# delegated subtree, (c) an unprivileged user in a delegated scope, (d) one without.
#
#   scripts/vm-test.sh [--ci|--quick] [--build DIR] [--out DIR] [--timeout SECONDS]
#
#   --ci         .ci/run's short form: positions (b) and (c), doctor, memory and thread bomb
#   --quick      doctor + the focused CLI cases per position (a)-(d), a refused set-up and
#                the opt-out; default (full): also the local driver's C suites
#                (vm_test_cgroup, jail_test_*, test_local_*) in positions (a)-(d)
#   --suites L   full form with only these C suites (comma list, e.g. jail_test_layers)
#   --positions L  only these positions (comma list of letters, e.g. b,c; default all,
#                which adds the refused set-up and the opt-out cases)
#   --time-multiplier N  the suites' waits, default timeout and Check timeouts times N
#                (BB_TEST_TIME_MULTIPLIER, CK_TIMEOUT_MULTIPLIER; default 1 with KVM, 10 under
#                TCG), and the zygote's start limit (BLOCKBOX_ZYGOTE_START_SECONDS = 60 x N,
#                at most 3600); never their checks
#   --no-cli     full form without the CLI cases (doctor and the C suites only: a
#                focused run; each CLI case starts a zygote, ~8 s or more under TCG)
#   --build DIR  a release build tree (default: build; built by scripts/build.sh if missing)
#   --out DIR    results: summary.txt, results.txt, doctor-<position>.json, console.log
#                (default: a fresh directory under /tmp)
#   --timeout S  wall-clock bound for the whole VM (default 480 ci, 900 quick, 5400 full)
#
# Environment: BLOCKBOX_VM_ACCEL=auto|kvm|tcg (auto tries KVM for 20 s, else TCG),
# BLOCKBOX_VM_MEMORY_MB (default 3072), BLOCKBOX_VM_KERNEL (a /boot/vmlinuz-* path).
# Prints one line `vm-test: N passed, M failed (K skipped; …)`; exit 0 only when M is 0, N > 0.
# Skipped: a suite that needs root (exit 77) in an unprivileged position.
set -euo pipefail
# One function, read whole before it runs: editing this file meanwhile cannot change a run.
main() {
cd "$(dirname "$0")/.."
repo=$(pwd)
mode=full
build=build
out=""
timeout_s=""
suites=vm_test_cgroup,jail_test_layers,jail_test_doctor,test_local_lifecycle,test_local_instances,test_local_concurrency
positions=all
tmul=""
clis=yes
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) mode=quick ;;
    --ci) mode=ci ;;
    --suites) suites=$2; shift ;;
    --build) build=$2; shift ;;
    --out) out=$2; shift ;;
    --timeout) timeout_s=$2; shift ;;
    --positions) positions=$2; shift ;;
    --time-multiplier) tmul=$2; shift ;;
    --no-cli) clis=no ;;
    -h | --help) sed -n '2,30p' "$0"; exit 0 ;;
    *) echo "vm-test: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
[ -n "$timeout_s" ] || case $mode in ci) timeout_s=480 ;; quick) timeout_s=900 ;; *) timeout_s=5400 ;; esac
[[ "$positions" =~ ^(all|[a-d](,[a-d])*)$ ]] || { echo "vm-test: --positions takes letters a-d, e.g. b,c" >&2; exit 2; }
[ -z "$tmul" ] || [[ "$tmul" =~ ^[1-9][0-9]{0,2}$ ]] || { echo "vm-test: --time-multiplier takes 1-999" >&2; exit 2; }
build=$(cd "$build" 2>/dev/null && pwd || echo "$repo/$build")

# What the VM needs from apt: the emulator and Debian's kernel (with its modules).
need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
ls /boot/vmlinuz-* >/dev/null 2>&1 || need+=(linux-image-amd64)
command -v busybox >/dev/null || need+=(busybox-static)
command -v cpio >/dev/null || need+=(cpio)
if [ ${#need[@]} -gt 0 ]; then
    echo "vm-test: installing ${need[*]}" >&2
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${need[@]}"
fi
busybox=$(command -v busybox)
file -L "$busybox" | grep -q "statically linked" || {
    echo "vm-test: $busybox is not static (install busybox-static)" >&2; exit 2; }

kernel=${BLOCKBOX_VM_KERNEL:-}
if [ -z "$kernel" ]; then
    for k in $(ls -v /boot/vmlinuz-* 2>/dev/null); do
        [ -d "/lib/modules/${k#/boot/vmlinuz-}/kernel" ] && kernel=$k
    done
fi
[ -n "$kernel" ] || { echo "vm-test: no /boot/vmlinuz-* with its /lib/modules" >&2; exit 2; }
kver=${kernel#/boot/vmlinuz-}
moddir=/lib/modules/$kver

if [ ! -x "$build/bin/blockbox" ]; then
    nice scripts/build.sh "$build" >&2
fi
if [ "$mode" = full ]; then
    for t in ${suites//,/ }; do
        [ -n "$(find "$build" -name "$t" -type f -perm -u+x -print -quit)" ] || {
            echo "vm-test: $t is not built in $build" >&2; exit 2; }
    done
fi

[ -n "$out" ] || out=$(mktemp -d /tmp/blockbox-vm.XXXXXX)
mkdir -p "$out"
out=$(cd "$out" && pwd)
rm -f "$out"/results.txt "$out"/summary.txt "$out"/doctor-*.json
work=$(mktemp -d /tmp/blockbox-vm-initrd.XXXXXX)
trap 'rm -rf "$work"' EXIT

# ---- initramfs: static busybox, the modules for virtio/9p/overlay, tests/vm/init ----
root=$work/root
mkdir -p "$root"/{bin,dev,proc,sys,mnt,lib/modules}
cp "$busybox" "$root/bin/busybox"
cp tests/vm/init "$root/init"
chmod 755 "$root/init"
mods=()
add_mod() { # a module and, first, what it depends on (modules.dep)
    local rel=$1 dep
    for m in "${mods[@]:-}"; do [ "$m" = "$rel" ] && return 0; done
    for dep in $(sed -n "s|^$rel: *||p" "$moddir/modules.dep"); do add_mod "$dep"; done
    mods+=("$rel")
}
for name in virtio_pci 9pnet_virtio 9p overlay; do
    rel=$(grep -E "(^|/)$name\.ko(\.[a-z]+)?:" "$moddir/modules.dep" | head -1 | cut -d: -f1)
    if [ -z "$rel" ]; then
        # built in? then nothing to load
        grep -qE "/$name\.ko" "$moddir/modules.builtin" && continue
        echo "vm-test: module $name not found for $kver" >&2; exit 2
    fi
    add_mod "$rel"
done
: > "$root/lib/modules/load"
for rel in "${mods[@]}"; do
    f=$moddir/$rel
    base=$(basename "$rel")
    case "$base" in
    *.ko.xz) xz -dc "$f" > "$root/lib/modules/${base%.xz}"; base=${base%.xz} ;;
    *.ko.zst) zstd -qdc "$f" > "$root/lib/modules/${base%.zst}"; base=${base%.zst} ;;
    *) cp "$f" "$root/lib/modules/$base" ;;
    esac
    echo "$base" >> "$root/lib/modules/load"
done
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$work/initrd.gz"

# ---- accelerator: KVM when it really boots, else TCG --------------------------------
mem=${BLOCKBOX_VM_MEMORY_MB:-3072}
qemu_base=(qemu-system-x86_64 -nographic -no-reboot -m "$mem" -smp 2
           -kernel "$kernel" -initrd "$work/initrd.gz"
           -fsdev "local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap"
           -device "virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot")
# no_timer_check: on a loaded host the emulated CPU can be too slow for the kernel's
# IO-APIC timer check, which then panics ("IO-APIC + timer doesn't work!").
append="console=ttyS0 panic=-1 loglevel=3 no_timer_check"
accel=${BLOCKBOX_VM_ACCEL:-auto}
if [ "$accel" = auto ]; then
    accel=tcg
    if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
        if timeout 20 "${qemu_base[@]}" -accel kvm -cpu host -append "$append bbvm.probe=1" \
            2>/dev/null </dev/null | grep -q "bbvm: probe ok"; then
            accel=kvm
        fi
    fi
fi
if [ "$accel" = kvm ]; then
    accel_args=(-accel kvm -cpu host)
else
    accel_args=(-accel "tcg,thread=multi" -cpu max)
fi
[ -n "$tmul" ] || { [ "$accel" = kvm ] && tmul=1 || tmul=10; }
echo "vm-test: kernel $kver, accel $accel, mode $mode, positions $positions, time x$tmul, build $build," \
    "results in $out" >&2

start=$(date +%s)
set +e
nice -n 10 timeout --kill-after=10 "$timeout_s" "${qemu_base[@]}" "${accel_args[@]}" \
    -fsdev "local,id=out,path=$out,security_model=none" -device "virtio-9p-pci,fsdev=out,mount_tag=out" \
    -append "$append bbvm.repo=$repo bbvm.build=$build bbvm.mode=$mode bbvm.suites=$suites bbvm.positions=$positions bbvm.tmul=$tmul bbvm.cli=$clis" \
    </dev/null > "$out/console.log" 2>&1
qrc=$?
set -e
elapsed=$(( $(date +%s) - start ))

passed=0
failed=0
skipped=0
if [ -f "$out/results.txt" ]; then
    passed=$(grep -c '^PASS ' "$out/results.txt" || true)
    failed=$(grep -c '^FAIL ' "$out/results.txt" || true)
    skipped=$(grep -c '^SKIP ' "$out/results.txt" || true)
    [ "$skipped" -eq 0 ] || grep '^SKIP ' "$out/results.txt" >&2
    grep '^FAIL ' "$out/results.txt" >&2 || true
fi
if [ ! -f "$out/summary.txt" ]; then
    failed=$((failed + 1))
    echo "vm-test: the guest did not finish (qemu exit $qrc after ${elapsed} s); see $out/console.log" >&2
    tail -20 "$out/console.log" >&2
fi
echo "vm-test: $passed passed, $failed failed ($skipped skipped; $mode, $accel, ${elapsed} s; $out)"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
}
main "$@"
