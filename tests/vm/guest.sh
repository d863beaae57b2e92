#!/bin/bash
# guest.sh: inside the vm-test VM: lays out cgroup v2 as systemd does, then per position
# (a) root at the root, (b) a root service with Delegate=yes, (c) uid 1000 in a delegated
# scope, (d) uid 1000 in a scope without delegation: doctor, CLI cases, (full) C suites.
#   guest.sh REPO BUILD ci|quick|full OUTDIR [SUITES [POSITIONS [TIME_MULTIPLIER [CLI]]]]
#     -> OUTDIR/results.txt, summary.txt, doctor-*.json (POSITIONS: all, or letters a-d;
#     CLI: yes, or no to leave the CLI cases out)
# ci: positions (b) and (c) only, doctor + memory bomb + thread bomb; quick: every position
# and case; full: quick + the local driver's C suites per position.
set -u
repo=$1 build=$2 mode=$3 out=$4
suites=${5:-vm_test_cgroup,jail_test_doctor,jail_test_layers,test_local_lifecycle,test_local_instances,test_local_concurrency}
positions=${6:-all}
tmul=${7:-1}
clis=${8:-yes}
cg=/sys/fs/cgroup
bin=$build/bin/blockbox
results=$out/results.txt
: > "$results"
work=/tmp/bbvm
mkdir -p "$work"
chmod 1777 "$work"
export TMPDIR=/tmp
# The zygote's start limit (60 s by default) scales with the emulator: one start imports
# Python, numpy and cv2 (the C suites scale it themselves from BB_TEST_TIME_MULTIPLIER).
zstart=$((60 * tmul))
[ "$zstart" -le 3600 ] || zstart=3600
export BLOCKBOX_ZYGOTE_START_SECONDS=$zstart

pass() { echo "PASS $*" >> "$results"; echo "bbvm: PASS $*"; }
fail() { echo "FAIL $*" >> "$results"; echo "bbvm: FAIL $*"; }
check() { # check NAME COMMAND...: PASS when the command succeeds
    local name=$1; shift
    if "$@" >> "$work/check.log" 2>&1; then pass "$name"; else fail "$name"; fi
}

# ---- the systemd layout: root offers memory pids cpu; init.scope holds everything else --
echo "+cpu +memory +pids" > $cg/cgroup.subtree_control
mkdir -p $cg/init.scope $cg/system.slice $cg/user.slice
for p in $(cat $cg/cgroup.procs); do echo "$p" > $cg/init.scope/cgroup.procs 2>/dev/null; done
echo "+cpu +memory +pids" > $cg/system.slice/cgroup.subtree_control
svc=$cg/system.slice/blockbox-vm.service
mkdir -p $svc
u=$cg/user.slice/user-1000.slice/user@1000.service/app.slice
mkdir -p $u
for d in user.slice user.slice/user-1000.slice user.slice/user-1000.slice/user@1000.service \
         user.slice/user-1000.slice/user@1000.service/app.slice; do
    echo "+cpu +memory +pids" > $cg/$d/cgroup.subtree_control
done
scope=$u/blockbox-vm.scope
mkdir -p $scope
# Delegate=yes for a user: the group and its three delegated files belong to the user.
chown 1000:1000 $scope $scope/cgroup.procs $scope/cgroup.subtree_control $scope/cgroup.threads
# No delegation: a login session scope, owned by root, as systemd makes it.
sess=$cg/user.slice/user-1000.slice/session-1.scope
mkdir -p $sess

# ---- blocks -------------------------------------------------------------------------
cat > $work/hello.py <<'EOF'
def run(self):
    import numpy as np, cv2
    img = np.zeros((64, 64, 3), np.uint8)
    cv2.rectangle(img, (4, 4), (40, 40), (0, 255, 0), -1)
    return {"sum": int(img.sum()), "cv2": cv2.__version__[:1]}
EOF
cat > $work/membomb.py <<'EOF'
def run(self):
    keep = []
    for _ in range(256):
        keep.append(bytearray(16 << 20))
    return {"allocated_mb": 16 * len(keep)}
EOF
cat > $work/threads.py <<'EOF'
import threading
def run(self):
    stop = threading.Event()
    started = []
    try:
        for _ in range(200):
            t = threading.Thread(target=stop.wait, daemon=True)
            t.start()
            started.append(t)
    except RuntimeError as e:
        pass
    n = len(started)
    stop.set()
    for t in started:
        t.join()
    return {"threads": n}
EOF
cat > $work/threads_many.py <<'EOF'
import threading
def run(self):
    stop = threading.Event()
    ts = [threading.Thread(target=stop.wait, daemon=True) for _ in range(40)]
    for t in ts:
        t.start()
    stop.set()
    for t in ts:
        t.join()
    import numpy as np
    return {"threads": len(ts), "dot": float(np.ones(1000) @ np.ones(1000))}
EOF
chmod 644 $work/*.py

# run_in GROUP USER CMD...: runs CMD in cgroup GROUP as USER (root or a uid)
# Once blockbox has moved the group's processes into its leaf, the group's later processes
# are forked there (a service's main process lives in it): start them there too.
run_in() {
    local group=$1 user=$2; shift 2
    [ -d "$group/blockbox-host" ] && group=$group/blockbox-host
    if [ "$user" = root ]; then
        sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$group" "$@"
    else
        sh -c 'echo $$ > "$0/cgroup.procs" && exec setpriv --reuid='"$user"' --regid='"$user"' --clear-groups \
            env HOME=/tmp "$@"' "$group" "$@"
    fi
}

# The state of every group above the delegation point: must not change.
above() { # above GROUP
    local d=$1
    while [ "$d" != $cg ]; do
        d=$(dirname "$d")
        echo "$d: $(cat $d/cgroup.subtree_control) | $(ls -d $d/*/ 2>/dev/null | tr '\n' ' ')"
    done
}
# Groups blockbox left: anything named blockbox-<n>, slot-<n> or worker-<n> under GROUP.
leftovers() { find "$1" -mindepth 1 -type d \( -name 'blockbox-[0-9]*' -o -name 'worker-*' -o -name 'slot-*' \) \
    2>/dev/null; }

cli() { # cli POS USER GROUP NAME EXPECT_RC GREP [ENV...] -- ARGS...
    [ "$clis" = yes ] || return 0
    local pos=$1 user=$2 group=$3 name=$4 want=$5 pat=$6; shift 6
    local envs=()
    while [ "$1" != -- ]; do envs+=("$1"); shift; done
    shift
    local o=$work/$pos-$name.out rc
    run_in "$group" "$user" env "${envs[@]}" "$bin" run "$@" > "$o" 2> "$o.err" < /dev/null
    rc=$?
    if [ "$rc" = "$want" ] && grep -qE "$pat" "$o"; then
        pass "$pos cli $name"
    else
        fail "$pos cli $name (exit $rc, want $want /$pat/): $(head -c 400 "$o") $(head -c 400 "$o.err")"
    fi
}

position() { # position NAME GROUP USER DELEGATED(yes|no)
    local pos=$1 group=$2 user=$3 deleg=$4
    [ "$positions" = all ] || [[ ",$positions," == *",${pos%%-*},"* ]] || return 0
    local t0=$(cut -d' ' -f1 /proc/uptime)
    local before=$(above "$group")
    run_in "$group" "$user" "$bin" doctor --json > "$out/doctor-$pos.json" 2> "$work/$pos-doctor.err"
    local ver=$(sed -n 's/^\t*"version":[ \t]*\([0-9]\).*/\1/p' "$out/doctor-$pos.json" | head -1)
    local ctl=$(tr -d '\n\t ' < "$out/doctor-$pos.json" | sed -n 's/.*"cgroup":{"version":[0-9],"controllers":\[\([^]]*\)\].*/\1/p')
    if [ "$deleg" = yes ]; then
        if [ "$ver" = 2 ] && [ "$ctl" = '"memory","pids","cpu"' ]; then
            pass "$pos doctor cgroup v2 memory pids cpu"
        else
            fail "$pos doctor cgroup v$ver controllers [$ctl]"
        fi
        [ "$mode" = ci ] || cli $pos $user $group hello 0 '"sum": *[0-9]+' -- --code $work/hello.py
        cli $pos $user $group membomb 3 '"error_type": *"MemoryLimit"' -- --code $work/membomb.py --memory 128
        # Only pids.max can stop the thread bomb here: RLIMIT_NPROC is switched off.
        cli $pos $user $group threadbomb 0 '"threads": *(1[0-9]|[0-9])[,}]' BLOCKBOX_MAX_THREADS=16 \
            BLOCKBOX_INSECURE_DISABLE_LAYERS=rlimits -- --code $work/threads.py
        # ... and without the cgroup the same bomb goes through: the case above can fail.
        # With the defaults RLIMIT_NPROC (16) may stop it first: bounded either way.
        [ "$mode" = ci ] || cli $pos $user $group threadbomb-defaults 0 '"threads": *(1[0-9]|[0-9])[,}]' \
            BLOCKBOX_MAX_THREADS=16 -- --code $work/threads.py
        [ "$mode" = ci ] || cli $pos $user $group threadbomb-no-cgroup 0 '"threads": *200[,}]' BLOCKBOX_MAX_THREADS=16 \
            BLOCKBOX_INSECURE_DISABLE_LAYERS=rlimits,cgroup -- --code $work/threads.py
        [ "$mode" = ci ] || cli $pos $user $group require-cgroup 0 '"sum"' BLOCKBOX_REQUIRE=cgroup -- \
            --code $work/hello.py
    else
        if [ "$ver" = 0 ] && grep -q 'Delegate=yes' "$out/doctor-$pos.json"; then
            pass "$pos doctor: no cgroup, names the fix"
        else
            fail "$pos doctor: cgroup v$ver, fix line: $(grep -o 'Delegate=yes[^"]*' "$out/doctor-$pos.json" | head -1)"
        fi
        cli $pos $user $group hello 0 '"sum": *[0-9]+' -- --code $work/hello.py
        cli $pos $user $group threads-many 0 '"threads": *40' -- --code $work/threads_many.py
        cli $pos $user $group threadbomb-nproc 0 '"threads": *(1[0-9]|[0-9])[,}]' BLOCKBOX_MAX_THREADS=16 -- \
            --code $work/threads.py
        # The rlimit fallback: the allocation fails inside the block (its own MemoryError).
        cli $pos $user $group membomb 1 '"error_type": *"MemoryError"' -- \
            --code $work/membomb.py --memory 128
        cli $pos $user $group require-cgroup 4 'ConfigurationError|BackendUnavailable|cgroup' \
            BLOCKBOX_REQUIRE=cgroup -- --code $work/hello.py
    fi
    if [ "$mode" = full ]; then
        local t
        for t in ${suites//,/ }; do
            local exe=$(find "$build" -name "$t" -type f -perm -u+x -print -quit)
            local w=$(find "$build" -name blockbox-worker -type f -perm -u+x -print -quit)
            local want=""
            [ "$deleg" = no ] && want=none
            (cd /tmp && run_in "$group" "$user" env BB_TEST_WORKER="$w" BB_TEST_CGROUP="$want" CK_DEFAULT_TIMEOUT=600 \
                CK_TIMEOUT_MULTIPLIER="$tmul" BB_TEST_TIME_MULTIPLIER="$tmul" "$exe") > "$work/$pos-$t.log" 2>&1
            local rc=$?
            if [ $rc = 77 ] && [ "$user" != root ]; then
                echo "SKIP $pos suite $t (exit 77: it needs root)" >> "$results"
            elif [ $rc = 0 ]; then
                pass "$pos suite $t (exit $rc: $(grep -Eo '[0-9]+%: Checks: [0-9]+.*' "$work/$pos-$t.log" | head -1))"
            else
                fail "$pos suite $t (exit $rc): $(grep -E ':[EF]:' "$work/$pos-$t.log" | head -5 | tr '\n' ' ')"
                cp "$work/$pos-$t.log" "$out/" 2>/dev/null
            fi
        done
    fi
    sleep 1
    local left=$(leftovers "$group")
    [ -z "$left" ] && pass "$pos nothing left behind" || fail "$pos left behind: $left"
    local after=$(above "$group")
    [ "$before" = "$after" ] && pass "$pos nothing changed above the delegation point" ||
        fail "$pos changed above the delegation point: before [$before] after [$after]"
    echo "bbvm: position $pos took $(echo "$(cut -d' ' -f1 /proc/uptime) $t0" | awk '{print $1-$2}') s"
    echo "position $pos: $(cut -d' ' -f1 /proc/uptime) $t0" >> "$out/timing.txt"
}

# Set-up refused half-way (a group that allows one descendant: the host leaf is made, the
# zygote's group is not): everything is undone, the block runs on the rlimit fallback.
refused_setup() {
    local g=$cg/system.slice/blockbox-refused.service
    mkdir -p $g
    echo 1 > $g/cgroup.max.descendants
    local before="$(cat $g/cgroup.subtree_control) | $(ls -d $g/*/ 2>/dev/null)"
    run_in $g root "$bin" run --code $work/hello.py > $work/refused.out 2> $work/refused.err
    local rc=$?
    local after="$(cat $g/cgroup.subtree_control) | $(ls -d $g/*/ 2>/dev/null)"
    if [ $rc = 0 ] && [ "$before" = "$after" ] && grep -q "set-up refused" $work/refused.err; then
        pass "refused set-up: undone, rlimit fallback runs the block"
    else
        fail "refused set-up: exit $rc, before [$before] after [$after]: $(head -c 600 $work/refused.err)"
    fi
}
# The opt-out: BLOCKBOX_CGROUP_LEAF=False never moves the program; doctor says why.
opt_out() {
    local g=$cg/system.slice/blockbox-optout.service
    mkdir -p $g
    run_in $g root env BLOCKBOX_CGROUP_LEAF=False "$bin" doctor --json > $out/doctor-optout.json 2>/dev/null
    run_in $g root env BLOCKBOX_CGROUP_LEAF=False "$bin" run --code $work/hello.py > $work/optout.out 2> $work/optout.err
    local rc=$?
    if [ $rc = 0 ] && grep -q 'BLOCKBOX_CGROUP_LEAF=False keeps them' $out/doctor-optout.json &&
       [ -z "$(ls -d $g/*/ 2>/dev/null)" ] && [ -z "$(cat $g/cgroup.subtree_control)" ]; then
        pass "opt-out: nothing moved, doctor says why"
    else
        fail "opt-out: exit $rc, children [$(ls -d $g/*/ 2>/dev/null)]: $(grep -o '"detail":[^}]*BLOCKBOX_CGROUP_LEAF[^"]*' $out/doctor-optout.json | head -1)"
    fi
}

[ "$mode" = ci ] || position a-root-at-root $cg root yes
position b-root-service $svc root yes
position c-user-scope $scope 1000 yes
if [ "$mode" != ci ]; then
    position d-user-no-delegation $sess 1000 no
    if [ "$positions" = all ]; then
        refused_setup
        opt_out
    fi
fi
cp "$work"/*.out "$work"/*.err "$out/" 2>/dev/null
echo "$(grep -c '^PASS' "$results") passed, $(grep -c '^FAIL' "$results") failed" > "$out/summary.txt"
