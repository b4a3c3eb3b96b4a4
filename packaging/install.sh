#!/usr/bin/env bash
# Installs gpbackup_ddboost_plugin on every host of a Greenplum cluster with the
# cluster's own tools, then checks the version each host runs. See usage below.
set -euo pipefail

readonly PLUGIN=gpbackup_ddboost_plugin
readonly LIBRARY=libDDBoost.so
prog=${0##*/}

usage() {
  cat <<EOF
Usage: $prog -f HOSTFILE [--gphome DIR] [--binary FILE] [--ddboost-lib FILE] [--dry-run]

Installs $PLUGIN as <GPHOME>/bin/$PLUGIN on every host listed in HOSTFILE,
with gpsync (Greenplum 7, Cloudberry) or else gpscp (Greenplum 6), and with
--ddboost-lib also the DD Boost SDK library as <GPHOME>/lib/$LIBRARY. Each file
is copied under a temporary name and renamed into place, so a backup running
during the install keeps the files it started with. Then runs
<GPHOME>/bin/$PLUGIN --version on every host through gpssh and reports each
host whose answer differs from the version installed.

Options:
  -f, --hostfile FILE   the hosts, one name per line, the coordinator included
                        (the file gpssh -f takes)
  --gphome DIR          the Greenplum home on every host (default: \$GPHOME)
  --binary FILE         the plugin to install (default: $PLUGIN beside
                        this script)
  --ddboost-lib FILE    also install FILE as <GPHOME>/lib/$LIBRARY
  --dry-run             print the commands, run none on the hosts
  -h, --help            this text

Run it as the owner of GPHOME (gpadmin) with greenplum_path.sh sourced, from a
host that reaches every host with gpssh. Exit status: 0 every host runs the
installed version; 1 a copy failed, a host could not be reached or differs;
2 wrong usage or a missing file or tool.

Example:
  $prog -f /home/gpadmin/hostfile_gpssh --ddboost-lib /opt/DDBoostSDK/lib/$LIBRARY
EOF
}

die() {
  echo "$prog: error: $*" >&2
  exit 2
}
say() { echo "$prog: $*"; }

# The shell-quoted form of each argument (quoted only when needed), separated
# by spaces.
quote() {
  local out="" a
  for a in "$@"; do
    if [[ -n $a && $a =~ ^[A-Za-z0-9_./=:,+@%-]+$ ]]; then
      out+="${out:+ }$a"
    else
      out+="${out:+ }'${a//\'/\'\\\'\'}'"
    fi
  done
  printf '%s' "$out"
}

# Runs a command on the hosts, or only prints it with --dry-run.
run() {
  echo "+ $(quote "$@")"
  ((dry_run)) && return 0
  "$@"
}

# The first of the named tools found on PATH, then in <GPHOME>/bin.
find_tool() {
  local t
  for t in "$@"; do
    if command -v "$t" >/dev/null 2>&1; then
      command -v "$t"
      return 0
    fi
  done
  for t in "$@"; do
    if [[ -x $gphome/bin/$t ]]; then
      echo "$gphome/bin/$t"
      return 0
    fi
  done
  return 1
}

hostfile=""
gphome=${GPHOME:-}
binary=""
ddboost_lib=""
dry_run=0
while (($#)); do
  case $1 in
    -f | --hostfile) (($# >= 2)) || die "$1 needs a file"; hostfile=$2; shift 2 ;;
    --hostfile=*) hostfile=${1#*=}; shift ;;
    --gphome) (($# >= 2)) || die "$1 needs a directory"; gphome=$2; shift 2 ;;
    --gphome=*) gphome=${1#*=}; shift ;;
    --binary) (($# >= 2)) || die "$1 needs a file"; binary=$2; shift 2 ;;
    --binary=*) binary=${1#*=}; shift ;;
    --ddboost-lib) (($# >= 2)) || die "$1 needs a file"; ddboost_lib=$2; shift 2 ;;
    --ddboost-lib=*) ddboost_lib=${1#*=}; shift ;;
    --dry-run) dry_run=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; echo >&2; die "unknown argument '$1'" ;;
  esac
done

# --- check everything before touching any host ------------------------------

[[ -n $hostfile ]] || { usage >&2; echo >&2; die "no host file: give one with -f HOSTFILE"; }
[[ -e $hostfile ]] || die "host file $hostfile does not exist"
[[ -f $hostfile && -r $hostfile ]] || die "host file $hostfile is not a readable file"
hosts=()
while IFS= read -r line || [[ -n $line ]]; do
  line=${line#"${line%%[![:space:]]*}"}
  line=${line%"${line##*[![:space:]]}"}
  [[ -z $line || $line == \#* ]] && continue
  [[ " ${hosts[*]-} " == *" $line "* ]] || hosts+=("$line")
done <"$hostfile"
((${#hosts[@]})) || die "host file $hostfile lists no host"

[[ -n $gphome ]] || die "GPHOME is not set: source greenplum_path.sh or give --gphome DIR"
[[ $gphome == /* ]] || die "GPHOME must be an absolute path, not '$gphome'"
gphome=${gphome%/}
[[ -d $gphome/bin ]] || die "$gphome/bin is not a directory here: is GPHOME ($gphome) right?"

if [[ -z $binary ]]; then
  binary=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$PLUGIN
  [[ -e $binary ]] || die "no $PLUGIN beside this script ($binary): give --binary FILE"
fi
[[ -f $binary ]] || die "binary $binary does not exist"
[[ -x $binary ]] || die "binary $binary is not executable"
version_line=$("$binary" --version 2>&1) || die "cannot run $binary --version here: $version_line"
[[ $version_line =~ ^$PLUGIN\ version\ [^[:space:]]+$ ]] ||
  die "$binary --version printed '$version_line', not '$PLUGIN version X.Y.Z': is it the plugin?"

lib_sum=""
if [[ -n $ddboost_lib ]]; then
  [[ -f $ddboost_lib && -r $ddboost_lib ]] || die "DD Boost library $ddboost_lib does not exist or is not readable"
  lib_sum=$(cksum <"$ddboost_lib")
fi

copy_tool=$(find_tool gpsync gpscp) ||
  die "neither gpsync (Greenplum 7, Cloudberry) nor gpscp (Greenplum 6) is on PATH or in $gphome/bin: source $gphome/greenplum_path.sh"
ssh_tool=$(find_tool gpssh) ||
  die "gpssh is not on PATH or in $gphome/bin: source $gphome/greenplum_path.sh"

# --- copy, rename into place, check -------------------------------------------

token=$(date +%Y%m%d%H%M%S)-$$
bin_dest=$gphome/bin/$PLUGIN
bin_tmp=$gphome/bin/.$PLUGIN.new-$token
lib_dest=$gphome/lib/$LIBRARY
lib_tmp=$gphome/lib/.$LIBRARY.new-$token

say "installing $version_line into $gphome on ${#hosts[@]} host(s) from $hostfile with ${copy_tool##*/}"
((dry_run)) && say "dry run: the commands are printed, not run"

copy_failed=0
run "$copy_tool" -f "$hostfile" "$binary" "=:$bin_tmp" || copy_failed=1
if [[ -n $ddboost_lib ]] && ((!copy_failed)); then
  run "$copy_tool" -f "$hostfile" "$ddboost_lib" "=:$lib_tmp" || copy_failed=1
fi
if ((copy_failed)); then
  echo "$prog: ${copy_tool##*/} failed: nothing was installed; removing the copies made" >&2
  run "$ssh_tool" -f "$hostfile" "rm -f $(quote "$bin_tmp" "$lib_tmp")" >/dev/null || true
  exit 1
fi

# On each host: rename the copies into place (where they arrived), then answer
# with the version of the plugin there (and the checksum of the library).
remote="if [ -f $(quote "$bin_tmp") ]; then chmod 755 $(quote "$bin_tmp") && mv -f $(quote "$bin_tmp" "$bin_dest"); fi;"
if [[ -n $ddboost_lib ]]; then
  remote+=" if [ -f $(quote "$lib_tmp") ]; then chmod 755 $(quote "$lib_tmp") && mv -f $(quote "$lib_tmp" "$lib_dest"); fi;"
fi
remote+=" $(quote "$bin_dest") --version 2>&1"
if [[ -n $ddboost_lib ]]; then
  remote+="; echo \"$LIBRARY cksum: \$(cksum < $(quote "$lib_dest") 2>&1)\""
fi

if ((dry_run)); then
  run "$ssh_tool" -f "$hostfile" "$remote"
  say "dry run: nothing was changed"
  exit 0
fi

echo "+ $(quote "$ssh_tool" -f "$hostfile" "$remote")"
ssh_status=0
answers=$("$ssh_tool" -f "$hostfile" "$remote" 2>&1) || ssh_status=$?

# gpssh prints each output line as "[host] line", the host name padded on the
# left to the longest name; a host it cannot log in to as
# "[ERROR] unable to login to host".
declare -A version_of=() lib_of=() other_of=() unreachable=()
while IFS= read -r line; do
  line=${line%$'\r'}
  if [[ $line =~ ^\[ERROR\]\ unable\ to\ login\ to\ (.+)$ ]]; then
    unreachable[${BASH_REMATCH[1]}]=1
  elif [[ $line =~ ^\[\ *([^]\ ]+)\ *\]\ ?(.*)$ ]]; then
    host=${BASH_REMATCH[1]}
    text=${BASH_REMATCH[2]}
    if [[ $text =~ ^$PLUGIN\ version\ [^[:space:]]+$ ]]; then
      version_of[$host]=$text
    elif [[ $text == "$LIBRARY cksum: "* ]]; then
      lib_of[$host]=${text#"$LIBRARY cksum: "}
    elif [[ -n $text ]]; then
      other_of[$host]+="${other_of[$host]:+; }$text"
    fi
  fi
done <<<"$answers"

ok=() bad=0 silent=()
for host in "${hosts[@]}"; do
  if [[ -n ${unreachable[$host]-} ]]; then
    echo "$prog: $host: cannot log in with gpssh; nothing checked there" >&2
    bad=1
  elif [[ -z ${version_of[$host]-} && -z ${other_of[$host]-} && -z ${lib_of[$host]-} ]]; then
    silent+=("$host")
  elif [[ ${version_of[$host]-} != "$version_line" ]]; then
    echo "$prog: $host differs: ${version_of[$host]:-${other_of[$host]:-no answer from the plugin}}" >&2
    bad=1
  elif [[ -n $ddboost_lib && ${lib_of[$host]-} != "$lib_sum" ]]; then
    echo "$prog: $host: $lib_dest differs from $ddboost_lib (cksum ${lib_of[$host]:-none}, expected $lib_sum)" >&2
    bad=1
  else
    ok+=("$host")
  fi
done
if ((${#silent[@]})); then
  if ((${#ok[@]} == 0 && !bad)); then
    echo "$prog: gpssh answered for no host (exit status $ssh_status):" >&2
    printf '%s\n' "$answers" >&2
    exit 1
  fi
  # gpssh runs a command once per machine, so another name of a machine that
  # answered (a second interface) gets no answer of its own.
  say "no answer from: ${silent[*]} (gpssh answers once per machine: another name of a host that answered?)"
fi
if ((${#ok[@]})); then
  say "ok on ${#ok[@]} host(s): ${ok[*]}: $version_line${ddboost_lib:+, $LIBRARY cksum $lib_sum}"
fi
if ((bad)); then
  echo "$prog: the install is incomplete: fix the hosts above and run $prog again" >&2
  exit 1
fi
say "done"
