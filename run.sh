#!/usr/bin/env bash
# Thingway developer entry point. Run from anywhere; it works in the repository root.
#
#   ./run.sh am [flags]          run the local AM (cmd/amlocal); ./run.sh am --help for flags
#   ./run.sh test                the CI checks: gofmt, go vet, go test -race
#   ./run.sh example NAME [...]  run an example program, e.g. thing/manual-registration
#   ./run.sh gateway [flags]     run the CoAP gateway (cmd/gateway); ./run.sh gateway --help for flags
#   ./run.sh help                this list
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

usage() {
	cat <<'USAGE'
usage: ./run.sh VERB [args...]

verbs:
  am [flags]            build and run the local AM (cmd/amlocal); see ./run.sh am --help
  test                  gofmt check, go vet ./..., go test -race -count=1 ./... (what CI runs)
  example NAME [flags]  run the example program examples/NAME (./run.sh example lists them)
  gateway [flags]       build and run the CoAP gateway (cmd/gateway); without --url it starts the
                        local AM in-process; see ./run.sh gateway --help
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

# gateway builds and execs like am, for the same reasons: SIGINT/SIGTERM
# reach the gateway, which logs its AM session out and exits 0. Unless a
# DTLS identity is given (--dtls-cert or GATEWAY_DTLS_CERT), it presents
# the example one in resources/ (CN thingway-gateway, issued by the example
# CA), so that things can verify it.
cmd_gateway() {
	go build -o bin/gateway ./cmd/gateway
	local args=("$@") a
	local given=${GATEWAY_DTLS_CERT:-}
	for a in "$@"; do
		case "$a" in
		--dtls-cert | --dtls-cert=* | -dtls-cert | -dtls-cert=*) given=yes ;;
		esac
	done
	if [ -z "$given" ]; then
		args=(--dtls-cert resources/gateway-dtls.cert.pem --dtls-key resources/gateway-dtls.key.pem "$@")
	fi
	exec bin/gateway "${args[@]}"
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

# examples lists the example programs: the directories under examples/
# (other than examples/internal) that hold a main.go, as NAMEs.
examples() {
	(cd examples && find . -name main.go -not -path './internal/*') | sed -e 's|^\./||' -e 's|/main\.go$||' | sort
}

# cmd_example runs go run ./examples/NAME from the repository root, so the
# program's working directory is the root (its default .secrets file lands
# there; resources/ is found from anywhere in the repository).
cmd_example() {
	local available name
	available=$(examples)
	if [ $# -eq 0 ]; then
		echo "usage: ./run.sh example NAME [flags...]; NAME is one of:" >&2
		echo "$available" | sed 's/^/  /' >&2
		return 1
	fi
	local arg=$1
	name=${arg%/}
	name=${name#./}
	name=${name#examples/}
	shift
	if ! grep -qxF -- "$name" <<<"$available"; then
		echo "run.sh: example: unknown example '$arg'; available:" >&2
		echo "$available" | sed 's/^/  /' >&2
		return 1
	fi
	exec go run "./examples/$name" "$@"
}

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
