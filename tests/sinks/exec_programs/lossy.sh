#!/bin/sh
# Wraps an exec-sink program and, once armed, loses the answer of the next write (for tests).
#
# Usage: lossy.sh FLAG PROGRAM [ARGS...] VERB [CREDENTIAL]
#
# Runs PROGRAM with the same arguments, standard input and output. When the file FLAG exists
# and the verb is a write (put-...), the write is done for real, then FLAG is removed and the
# wrapper reports a failure although the write landed: FLAG holding "kill" makes it die by
# SIGKILL, anything else makes it exit 1. The rotator must treat the outcome as unknown.
# A shell script rather than Python: it runs on every call of the suite, and starts in a
# millisecond.
flag=$1
shift
verb=
previous=
for word in "$@"; do
    previous=$verb
    verb=$word
done
# With a credential the verb is the next-to-last word.
case $previous in put-*) verb=$previous ;; esac
"$@"
status=$?
if [ "$status" -ne 0 ] || [ ! -e "$flag" ]; then
    exit "$status"
fi
case $verb in
    put-*) ;;
    *) exit 0 ;;
esac
mode=$(cat "$flag")
rm -f "$flag"
if [ "$mode" = kill ]; then
    kill -KILL $$
fi
echo "lossy: the write landed, but this answer is lost" >&2
exit 1
