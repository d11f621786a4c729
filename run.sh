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
  test                  gofmt check, go vet ./..., go test -race -count=1 ./..., and the commands
                        built for linux/amd64, linux/arm64 and linux/arm (GOARM=7) (what CI runs)
  example NAME [flags]  run the example program examples/NAME (./run.sh example lists them)
  gateway [flags]       build and run the CoAP gateway (cmd/gateway); without --url it starts the
                        local AM in-process; see ./run.sh gateway --help
  help                  show this list
USAGE
}

# build PKG OUT builds the Go package PKG into OUT. A build that takes more
# than a few seconds (the first one compiles every dependency) says so on
# stderr, and every 10 seconds after that, so that it is not mistaken for a
# hang; a quick one says nothing. Without OUT yet, the build is a first one.
build() {
	local pkg=$1 out=$2 start=$SECONDS next=3 pid first=""
	[ -e "$out" ] || first=" (a first build compiles every dependency: a minute or two)"
	go build -buildvcs=auto -o "$out" "$pkg" &
	pid=$!
	while kill -0 "$pid" 2>/dev/null; do
		if [ $((SECONDS - start)) -ge "$next" ]; then
			if [ "$next" -eq 3 ]; then
				echo "run.sh: building $pkg$first..." >&2
			else
				echo "run.sh: still building $pkg ($((SECONDS - start)) s)" >&2
			fi
			next=$((next == 3 ? 10 : next + 10))
		fi
		sleep 0.2
	done
	wait "$pid"
}

# am builds into bin/ and execs the binary rather than using go run, so that
# SIGTERM reaches amlocal (go run does not forward it and would leave the
# server running) and its exit status and error line come through unchanged.
cmd_am() {
	build ./cmd/amlocal bin/amlocal
	exec bin/amlocal "$@"
}

# gateway builds and execs like am, for the same reasons: SIGINT/SIGTERM
# reach the gateway, which logs its AM session out and exits 0. Unless a
# DTLS identity is given (--dtls-cert or GATEWAY_DTLS_CERT), it presents
# the example one in resources/ (CN thingway-gateway, issued by the example
# CA), so that things can verify it; unless --metrics-address (or
# GATEWAY_METRICS_ADDRESS) is given, it serves /metrics, /livez and /readyz
# on 127.0.0.1:9180.
cmd_gateway() {
	build ./cmd/gateway bin/gateway
	local args=("$@") a
	local given=${GATEWAY_DTLS_CERT:-}
	for a in "$@"; do
		case "$a" in
		--dtls-cert | --dtls-cert=* | -dtls-cert | -dtls-cert=*) given=yes ;;
		esac
	done
	if [ -z "$given" ]; then
		args=(--dtls-cert resources/gateway-dtls.cert.pem --dtls-key resources/gateway-dtls.key.pem "${args[@]}")
	fi
	# Metrics and probes on 127.0.0.1:9180 unless told otherwise.
	local metrics=${GATEWAY_METRICS_ADDRESS:-}
	for a in "$@"; do
		case "$a" in
		--metrics-address | --metrics-address=* | -metrics-address | -metrics-address=*) metrics=given ;;
		esac
	done
	if [ -z "$metrics" ]; then
		args=(--metrics-address 127.0.0.1:9180 "${args[@]}")
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
	echo "==> go vet ./... (a first run compiles every package: a minute or two)"
	go vet ./...
	echo "==> go test -race -count=1 -timeout 20m ./..."
	go test -race -count=1 -timeout 20m ./...
	# The edge boxes' platforms: every command must build for them.
	local target
	for target in linux/amd64 linux/arm64 linux/arm/7; do
		echo "==> go build ./cmd/... for $target"
		IFS=/ read -r goos goarch goarm <<<"$target"
		GOOS=$goos GOARCH=$goarch GOARM=$goarm CGO_ENABLED=0 go build ./cmd/...
	done
}

# examples lists the example programs: the directories under examples/
# (other than examples/internal) that hold a main.go, as NAMEs.
examples() {
	(cd examples && find . -name main.go -not -path './internal/*') | sed -e 's|^\./||' -e 's|/main\.go$||' | sort
}

# cmd_example builds examples/NAME into bin/examples/NAME and runs it from
# the repository root, so the program's working directory is the root (its
# default .secrets file lands there; resources/ is found from anywhere in
# the repository). It runs under the name NAME, which its usage line shows,
# and gets SIGINT/SIGTERM itself, as go run would not pass them on.
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
	build "./examples/$name" "bin/examples/$name"
	exec -a "$name" "bin/examples/$name" "$@"
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
