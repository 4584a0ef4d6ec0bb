#!/bin/sh
# man.sh FERRY VERSION [COMMAND] DESCRIPTION: the man page of ferry (or of
# ferry COMMAND, as ferry-COMMAND) on stdout, made by help2man from the
# --help text, so that the two never disagree.
set -e
ferry=$1 version=$2
if [ $# -eq 4 ]; then cmd=$3 what=$4; else cmd="" what=$3; fi
name=ferry${cmd:+-$cmd}
help2man --no-info --no-discard-stderr --version-string "$version" \
	--help-option "${cmd:+$cmd }--help" --name "$what" "$ferry" |
	sed -e "s/^\.TH FERRY /.TH $(echo "$name" | tr a-z A-Z) /" -e "s/^ferry \\\\- /$name \\\\- /"
