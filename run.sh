#!/usr/bin/env bash
# Thingway developer entry point. Run from anywhere; it works in the repository root.
#
#   ./run.sh am [flags]          run the local AM (cmd/amlocal); ./run.sh am --help for flags
#   ./run.sh test                the CI checks: gofmt, go vet, go test -race
#   ./run.sh example NAME [...]  run an example (not yet available)
#   ./run.sh gateway [...]       run the gateway (not yet available)
#   ./run.sh help                this list
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

usage() {
	cat <<'USAGE'
usage: ./run.sh VERB [args...]

verbs:
  am [flags]            build and run the local AM (cmd/amlocal); see ./run.sh am --help
  test                  gofmt check, go vet ./..., go test -race -count=1 ./... (what CI runs)
  example NAME [flags]  run an example program (not yet available)
  gateway [flags]       run the CoAP gateway (not yet available)
  help                  show this list
USAGE
}

# am builds into bin/ and execs the binary rather than using go run, so that
# SIGTERM reaches amlocal (go run does not forward it and would leave the
# server running) and its exit status and error line come through unchanged.
cmd_am() {
	go build -o bin/amlocal ./cmd/amlocal
	exec bin/amlocal "$@"
}

cmd_test() {
	echo "==> gofmt -l"
	local files unformatted
	files=$(git ls-files '*.go')
	if [ -n "$files" ]; then
		# shellcheck disable=SC2086 # one word per tracked file
		unformatted=$(gofmt -l $files)
		if [ -n "$unformatted" ]; then
			echo "gofmt would change these files (run gofmt -w on them):" >&2
			echo "$unformatted" >&2
			return 1
		fi
	fi
	echo "==> go vet ./..."
	go vet ./...
	echo "==> go test -race -count=1 -timeout 20m ./..."
	go test -race -count=1 -timeout 20m ./...
}

# --- verbs coming with later issues -------------------------------------
# example NAME [flags]: go run ./examples/NAME "$@"
# gateway [flags]:      go run ./cmd/gateway "$@"
cmd_example() {
	echo "run.sh: example: not yet available" >&2
	return 1
}

cmd_gateway() {
	echo "run.sh: gateway: not yet available" >&2
	return 1
}
# -------------------------------------------------------------------------

if [ $# -eq 0 ]; then
	usage >&2
	exit 1
fi
verb=$1
shift
case "$verb" in
am) cmd_am "$@" ;;
test) cmd_test "$@" ;;
example) cmd_example "$@" ;;
gateway) cmd_gateway "$@" ;;
help | -h | --help) usage ;;
*)
	echo "run.sh: unknown verb '$verb'" >&2
	usage >&2
	exit 1
	;;
esac
