#!/bin/sh
# meson install: the binary, a man page for ferry and each command (made
# from its --help, so they carry its options), bash completion that
# completes commands, options and VM names, and the systemd unit template
# pointing at the installed binary.
. "$(dirname "$0")/lib.sh"
: "${BUILD_ROOT:?set BUILD_ROOT to the meson build directory}"
ROOT="$TMP/root"
DESTDIR="$ROOT" meson install -C "$BUILD_ROOT" --no-rebuild --quiet >"$TMP/install.log" 2>&1 ||
	{ fail "meson install: $(tail -5 "$TMP/install.log")"; finish install; }
PREFIX=$(meson introspect "$BUILD_ROOT" --buildoptions |
	python3 -c "import json,sys; print([o['value'] for o in json.load(sys.stdin) if o['name']=='prefix'][0])")
BIN="$ROOT$PREFIX/bin/ferry"

note "the binary"
[ -x "$BIN" ] && "$BIN" version | grep -q "^ferry " || fail "no working ferry at $BIN"

note "man pages"
if command -v help2man >/dev/null; then
	for cmd in "" run status list migrate migrate-set migrate-cancel migrate-resolve upgrade ctl; do
		page="$ROOT$PREFIX/share/man/man1/ferry${cmd:+-$cmd}.1"
		[ -f "$page" ] || { fail "no man page $page"; continue; }
		grep -q "^\.TH FERRY${cmd:+-$(echo "$cmd" | tr a-z A-Z)} " "$page" || fail "$page: wrong title"
	done
	grep -q 'max\\-bandwidth' "$ROOT$PREFIX/share/man/man1/ferry-migrate.1" ||
		fail "ferry-migrate.1 lacks --max-bandwidth"
	grep -q 'watch' "$ROOT$PREFIX/share/man/man1/ferry-migrate.1" || fail "ferry-migrate.1 lacks --watch"
else
	note "no help2man here: man pages not checked"
fi

note "bash completion"
COMP=$(find "$ROOT" -path '*bash-completion/completions/ferry')
[ -n "$COMP" ] || fail "no bash completion installed"
if [ -n "$COMP" ] && [ -f /usr/share/bash-completion/bash_completion ]; then
	mkdir -p "$TMP/run"
	python3 -c "import socket; socket.socket(socket.AF_UNIX).bind('$TMP/run/web1.sock')"
	complete_words() { # WORDS...: what completing the last word offers
		FERRY_RUN_DIR="$TMP/run" bash -c '
			source /usr/share/bash-completion/bash_completion; source "$0"
			COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
			COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
			_ferry; echo "${COMPREPLY[*]}"' "$COMP" "$@"
	}
	echo " $(complete_words "$BIN" migrate-) " | grep -q " migrate-cancel " ||
		fail "commands: $(complete_words "$BIN" migrate-)"
	echo " $(complete_words "$BIN" migrate --wa) " | grep -q " --watch " ||
		fail "options: $(complete_words "$BIN" migrate --wa)"
	echo " $(complete_words "$BIN" status --control we) " | grep -q " web1 " ||
		fail "VM names: $(complete_words "$BIN" status --control we)"
	FERRY_RUN_DIR="$TMP/run" "$BIN" run --control live --incoming "unix:$TMP/live.in" 2>/dev/null &
	PIDS="$PIDS $!"
	wait_socket "$TMP/run/live.sock"
	echo " $(complete_words "$BIN" ctl --control live query-mi) " | grep -q " query-migrate-parameters " ||
		fail "control commands: $(complete_words "$BIN" ctl --control live query-mi)"
fi

note "systemd unit template"
UNIT=$(find "$ROOT" -name 'ferry@.service')
[ -n "$UNIT" ] && grep -q "^ExecStart=$PREFIX/bin/ferry run --control %i \$FERRY_ARGS$" "$UNIT" ||
	fail "the unit does not run the installed ferry: $(grep ExecStart "$UNIT")"
finish install
