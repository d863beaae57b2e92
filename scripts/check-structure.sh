#!/usr/bin/env bash
# check-structure.sh: the house rules of docs/ARCHITECTURE.md, checked on every #include
# line of the product's C files; prints each violation and exits 1 if there is any.
#
# Usage: scripts/check-structure.sh           check (ctest runs this: test "structure")
#        scripts/check-structure.sh --show    also print which rooms include which
#
# Rooms (by path):
#   public   include/                       the API and the driver ABI
#   core     src/*.c src/*.h                executor, config, serializer, errors, registry
#   driver   drivers/<name>/...             one backend each (its worker program included)
#   program  src/cli/ src/serve/ bench/     programs built on the library
# Rules:
#   public  -> public only
#   core    -> core, public (never a driver, never a program)
#   driver  -> its own driver, public, and the library toolkit (src/error.h, src/buf.h);
#              never another driver, no other core header, no program
#   program -> its own room, public only
# Known exceptions are listed, dated, each with why it stays, in
# scripts/check-structure.allow ("FILE HEADER  # date, who: why"); an entry that no
# longer matches anything is reported too, so the list only shrinks.
set -uo pipefail
cd "$(dirname "$0")/.."

show=0
[ "${1:-}" = "--show" ] && show=1
allow_file=scripts/check-structure.allow
toolkit=" src/error.h src/buf.h "

room_of() { # path -> room name (driver rooms carry their driver: driver:local)
    case "$1" in
    include/*) echo public ;;
    src/cli/* | src/serve/* | bench/*) echo "program:${1%/*}" ;;
    src/*/*) echo other ;;
    src/*) echo core ;;
    drivers/*/*) local rest=${1#drivers/}; echo "driver:${rest%%/*}" ;;
    *) echo other ;;
    esac
}

# Where a quoted include lands: the including file's directory first, then the include
# paths the build gives (include/, src/, drivers/, the top); "" for a system header.
# A driver's own directory is on its include path too (drivers/local for its worker/).
resolve() { # from-file header
    local dir=${1%/*} h=$2 c own=""
    case "$1" in drivers/*/*) own=${1#drivers/}; own="drivers/${own%%/*}/$h" ;; esac
    for c in "$dir/$h" "include/$h" "src/$h" "drivers/$h" $own "$h"; do
        if [ -f "$c" ]; then
            case "$c" in */../* | ./* | */./*) realpath -m --relative-to=. "$c" ;; *) echo "$c" ;; esac
            return
        fi
    done
    # Anywhere else in the tree (a test helper, say): that file, in room "other".
    c=$(git ls-files "*/$h" 2>/dev/null | head -1)
    echo "${c:-(missing) $h}"
}

allowed() { # from-room to-room to-path
    local from=$1 to=$2 path=$3
    case "$from" in
    public) [ "$to" = public ] ;;
    core) [ "$to" = core ] || [ "$to" = public ] ;;
    driver:*) [ "$to" = "$from" ] || [ "$to" = public ] || [[ "$toolkit" == *" $path "* ]] ;;
    program:*) [ "$to" = "$from" ] || [ "$to" = public ] ;;
    *) true ;;
    esac
}

declare -A allow=() used=() edges=()
if [ -f "$allow_file" ]; then
    while read -r file header _; do
        [ -z "$file" ] || [ "${file:0:1}" = "#" ] && continue
        allow["$file $header"]=1
    done <"$allow_file"
fi

violations=0
files=$(find include src drivers bench -name '*.[ch]' | sort)
for f in $files; do
    from=$(room_of "$f")
    [ "$from" = other ] && continue
    while IFS= read -r line; do
        header=""
        if [[ "$line" =~ ^[[:space:]]*#[[:space:]]*include[[:space:]]*\"([^\"]+)\" ]]; then
            header=$(resolve "$f" "${BASH_REMATCH[1]}")
        elif [[ "$line" =~ ^[[:space:]]*#[[:space:]]*include[[:space:]]*\<(blockbox[^>]*)\> ]]; then
            header="include/${BASH_REMATCH[1]}"
        else
            continue
        fi
        to=$(room_of "$header")
        edges["$from -> $to"]=$(( ${edges["$from -> $to"]:-0} + 1 ))
        if ! allowed "$from" "$to" "$header"; then
            if [ -n "${allow["$f $header"]:-}" ]; then
                used["$f $header"]=1
            else
                echo "violation: $f ($from) includes $header ($to)"
                violations=$((violations + 1))
            fi
        fi
    done < <(grep -E '^[[:space:]]*#[[:space:]]*include' "$f")
done

for key in "${!allow[@]}"; do
    if [ -z "${used[$key]:-}" ]; then
        echo "stale allowlist entry (nothing matches it any more; remove it): $key"
        violations=$((violations + 1))
    fi
done

if [ "$show" = 1 ]; then
    echo "include edges between rooms (count of #include lines):"
    for e in "${!edges[@]}"; do printf '  %-40s %s\n' "$e" "${edges[$e]}"; done | sort
fi
n_allowed=${#used[@]}
if [ "$violations" -gt 0 ]; then
    echo "check-structure: $violations violation(s) of docs/ARCHITECTURE.md ($n_allowed known, allowlisted)"
    exit 1
fi
echo "check-structure: OK ($n_allowed known violation(s) allowlisted in $allow_file)"
