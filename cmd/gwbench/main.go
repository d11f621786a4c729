// Command gwbench measures a Thingway gateway on this machine. In one
// run it starts the local AM (package amtest, in gwbench's process) and a
// gateway on loopback (by default the cmd/gateway binary in a process of
// its own, whose CPU and memory it reads from /proc and from the
// gateway's --metrics-address), registers things in the AM, and reports:
//
//   - proof-of-possession access-token requests per second, with latency
//     percentiles, through the gateway (CoAP over DTLS, thing.DialGateway)
//     and directly over HTTP (thing.New with an *amclient.Client);
//   - DTLS handshakes per second (thing.DialGateway, which also pings,
//     then Close);
//   - memory per idle connected thing: the growth of the heap, the
//     goroutine stacks and the RSS of the gateway's process when N things
//     hold an idle DTLS session each;
//   - memory per parked thing: the same on a second gateway whose idle
//     sessions are parked (ParkAfter 1 s);
//   - handshakes after a graceful restart: N sessions, Shutdown (SIGTERM
//     to the gateway process) with a session file, a new gateway on the
//     address, one request per thing;
//   - the gateway process's CPU per proxied request and per handshake,
//     and the crypto floor of a handshake (ECDHE, ECDSA sign and
//     verifications on P-256, measured in the same run) it is compared to;
//   - with --iot-edge-bin, the same against iot-edge v7.4's gateway
//     binary (built by the reader, outside this repository), side by side.
//
// # Usage
//
//	gwbench [--duration 10s] [--concurrency 8] [--things 1000]
//	        [--address 127.0.0.1:0] [--am-address 127.0.0.1:0]
//	        [--idle-clients process|in-process] [--json]
//	        [--gateway-mode process|in-process] [--gateway-bin FILE]
//	        [--iot-edge-bin FILE] [--gateway-profile DIR]
//
// Progress lines go to stderr; the machine, the settings and the results
// table (or, with --json, one JSON object) go to stdout.
//
// All traffic stays on loopback: --address and --am-address must be
// loopback addresses (127.0.0.0/8, ::1 or localhost); any other address is
// refused. Every scenario runs for --duration; --concurrency workers run
// at once.
//
// # Idle things
//
// By default the idle DTLS sessions are opened by a child process (gwbench
// runs itself again with a hidden subcommand), so that the memory measured
// in gwbench's own process is that of the gateway (and of the idle local
// AM), not of the clients. --idle-clients in-process opens them in the same
// process instead; the figure then covers client and gateway together.
//
// --gateway-mode in-process runs the gateway in gwbench's own process
// instead (no CPU figures of its own then); --gateway-bin gives the
// cmd/gateway binary, which gwbench otherwise builds with go build.
//
// The clients share the machine's cores with the gateway and the AM, so
// the rates are a lower bound for the gateway alone. docs/benchmarks.md
// explains each figure.
package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/thingway/thingway/internal/cliutil"
	"github.com/urfave/cli/v2"
)

func main() { cliutil.Main(newApp(os.Stdout, os.Stderr)) }

// Flag names.
const (
	flagDuration     = "duration"
	flagConcurrency  = "concurrency"
	flagThings       = "things"
	flagAddress      = "address"
	flagAMAddress    = "am-address"
	flagIdleClients  = "idle-clients"
	flagJSON         = "json"
	flagGatewayMode  = "gateway-mode"
	flagGatewayBin   = "gateway-bin"
	flagIoTEdgeBin   = "iot-edge-bin"
	flagProfile      = "gateway-profile"
	flagSoak         = "soak"
	flagSoakWindow   = "soak-window"
	flagSoakEvery    = "soak-interval"
	flagLibraryFloor = "library-floor"

	// flags of the hidden child command
	flagGateway = "gateway"
	flagPin     = "pin"
)

// Bounds of the settings: gwbench is a bounded load on the local machine.
const (
	maxDuration    = 10 * time.Minute
	maxConcurrency = 256
	maxThings      = 100000
)

// maxProcessSessions is the most DTLS sessions one process opens: each
// thing has a UDP socket of its own, and the open-file limit is per
// process (20,000 on the machines these figures come from). c), d) and the
// soak spread more things over several child processes; e) and in-process
// idle things stop at this many. (A variable for the tests.)
var maxProcessSessions = processSessions(openFileLimit())

// processSessions is how many sessions a process whose open-file limit is
// limit opens: the limit less processFiles for everything else (at least
// half of a low limit), or 15,000 where the limit is not known.
func processSessions(limit int) int {
	if limit <= 0 {
		return 15000
	}
	return max(limit-processFiles, limit/2)
}

// processFiles is what a gwbench process keeps of its open-file limit for
// its other files and connections.
const processFiles = 1000

// The values of --idle-clients.
const (
	idleProcess   = "process"
	idleInProcess = "in-process"
)

// childCommand is the hidden subcommand that opens idle sessions in a
// child process.
const childCommand = "idle-clients"

func newApp(stdout, stderr io.Writer) *cli.App {
	return &cli.App{
		Name:  "gwbench",
		Usage: "benchmark the Thingway gateway against the local AM, on loopback",
		Description: "Starts the local AM and a gateway in this process on loopback, registers things, and reports\n" +
			"proxied vs direct PoP access-token rates and latencies, DTLS handshakes/s, and memory per idle thing.",
		HideHelpCommand: true,
		Version:         cliutil.Version(),
		Writer:          stdout,
		ErrWriter:       stderr,
		Flags: []cli.Flag{
			&cli.DurationFlag{Name: flagDuration, Value: 10 * time.Second, Usage: "how long each throughput scenario runs"},
			&cli.IntFlag{Name: flagConcurrency, Value: 8, Usage: "workers per scenario (each its own thing and session)"},
			&cli.IntFlag{Name: flagThings, Value: 1000, Usage: "things registered, and idle DTLS sessions opened for the memory figure"},
			&cli.StringFlag{Name: flagAddress, Value: "127.0.0.1:0", Usage: "loopback UDP `HOST:PORT` of the gateway"},
			&cli.StringFlag{Name: flagAMAddress, Value: "127.0.0.1:0", Usage: "loopback TCP `HOST:PORT` of the local AM"},
			&cli.StringFlag{Name: flagIdleClients, Value: idleProcess, Usage: "where the idle things run: process (a child process, so the memory measured is the gateway's) or in-process"},
			&cli.StringFlag{Name: flagGatewayMode, Value: gwProcess, Usage: "where the gateway runs: process (the cmd/gateway binary, a process of its own, whose CPU and memory are measured) or in-process"},
			&cli.StringFlag{Name: flagGatewayBin, Usage: "the cmd/gateway `BINARY` of --gateway-mode process [default: built with go build from this module]"},
			&cli.StringFlag{Name: flagIoTEdgeBin, Usage: "an iot-edge v7.4 gateway `BINARY`, built outside this repository: a), b) and c) run against it too, in the same run, beside the Thingway gateway process"},
			&cli.StringFlag{Name: flagProfile, Usage: "`DIR` to save a CPU profile (go tool pprof) of the gateway process during a) and b) in (it costs the gateway a little CPU), and its heap profile and goroutines with c)'s idle sessions and d)'s parked ones"},
			&cli.DurationFlag{Name: flagSoak, Usage: "run the soak scenario instead, for `DURATION`: --things idle sessions (a child process) beside --concurrency active things, reported every --soak-window"},
			&cli.DurationFlag{Name: flagSoakWindow, Usage: "with --soak: how often the figures are taken [default: a minute, or --soak if shorter]"},
			&cli.DurationFlag{Name: flagSoakEvery, Value: time.Second, Usage: "with --soak: how often each active thing asks for a token (or, reconnecting, opens a new session)"},
			&cli.BoolFlag{Name: flagLibraryFloor, Usage: "also run b) and c) against servers made of the gateway's libraries alone (pion/dtls v3; go-coap v3's DTLS server), no Thingway code: the floor the gateway stands on"},
			&cli.BoolFlag{Name: flagJSON, Usage: "print the results as one JSON object instead of a table"},
		},
		Commands: []*cli.Command{{
			Name:   libraryCommand,
			Hidden: true,
			Usage:  "(internal) a DTLS server of the gateway's libraries alone, for --library-floor",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: flagMode, Required: true},
				&cli.StringFlag{Name: flagAddress, Value: "127.0.0.1:0"},
				&cli.StringFlag{Name: flagDTLSCert, Required: true},
				&cli.StringFlag{Name: flagDTLSKey, Required: true},
			},
			Action: func(c *cli.Context) error {
				return runLibraryServer(c.Context, c.String(flagMode), c.String(flagAddress),
					c.String(flagDTLSCert), c.String(flagDTLSKey), stderr)
			},
		}, {
			Name:   childCommand,
			Hidden: true,
			Usage:  "(internal) open idle DTLS sessions to a gateway for the memory figure",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: flagGateway, Required: true},
				&cli.StringFlag{Name: flagPin, Required: true},
				&cli.IntFlag{Name: flagThings, Value: 1},
				&cli.IntFlag{Name: flagConcurrency, Value: 1},
			},
			Action: func(c *cli.Context) error {
				if err := checkLoopback(c.String(flagGateway)); err != nil {
					return err
				}
				return runIdleChild(c.Context, c.String(flagGateway), c.String(flagPin),
					c.Int(flagThings), c.Int(flagConcurrency), os.Stdin, stdout)
			},
		}},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return fmt.Errorf("unexpected argument %q (gwbench takes only flags; see --help)", c.Args().First())
			}
			s := settings{
				Duration:     c.Duration(flagDuration),
				Concurrency:  c.Int(flagConcurrency),
				Things:       c.Int(flagThings),
				Address:      c.String(flagAddress),
				AMAddress:    c.String(flagAMAddress),
				IdleClients:  c.String(flagIdleClients),
				GatewayMode:  c.String(flagGatewayMode),
				GatewayBin:   c.String(flagGatewayBin),
				IoTEdgeBin:   c.String(flagIoTEdgeBin),
				ProfileDir:   c.String(flagProfile),
				Soak:         c.Duration(flagSoak),
				SoakWindow:   c.Duration(flagSoakWindow),
				SoakInterval: c.Duration(flagSoakEvery),
				LibraryFloor: c.Bool(flagLibraryFloor),
			}
			if err := s.check(); err != nil {
				return err
			}
			if err := checkLocalPorts(portRangeFile, s.Things+2*s.Concurrency+portMargin); err != nil {
				return err
			}
			if s.Soak > 0 {
				return runSoak(c.Context, s, c.Bool(flagJSON), stdout, &progress{w: stderr, start: time.Now()})
			}
			return run(c.Context, s, c.Bool(flagJSON), stdout, stderr)
		},
	}
}

// settings are gwbench's flags.
type settings struct {
	Duration    time.Duration `json:"-"`
	DurationS   float64       `json:"duration_s"`
	Concurrency int           `json:"concurrency"`
	Things      int           `json:"things"`
	Address     string        `json:"address"`
	AMAddress   string        `json:"am_address"`
	IdleClients string        `json:"idle_clients"`
	GatewayMode string        `json:"gateway_mode"`
	GatewayBin  string        `json:"gateway_bin,omitempty"`
	IoTEdgeBin  string        `json:"iot_edge_bin,omitempty"`
	ProfileDir  string        `json:"gateway_profile_dir,omitempty"`
	// LibraryFloor: run g), the libraries' floor.
	LibraryFloor bool `json:"library_floor,omitempty"`
	// The soak scenario's (Soak 0: not run).
	Soak         time.Duration `json:"-"`
	SoakS        float64       `json:"soak_s,omitempty"`
	SoakWindow   time.Duration `json:"-"`
	SoakWindowS  float64       `json:"soak_window_s,omitempty"`
	SoakInterval time.Duration `json:"-"`
	SoakEveryS   float64       `json:"soak_interval_s,omitempty"`
}

func (s *settings) check() error {
	if s.Duration <= 0 || s.Duration > maxDuration {
		return fmt.Errorf("--%s %v: want more than 0 and at most %v", flagDuration, s.Duration, maxDuration)
	}
	s.DurationS = s.Duration.Seconds()
	if s.Concurrency < 1 || s.Concurrency > maxConcurrency {
		return fmt.Errorf("--%s %d: want 1 to %d", flagConcurrency, s.Concurrency, maxConcurrency)
	}
	if s.Things < 1 || s.Things > maxThings {
		return fmt.Errorf("--%s %d: want 1 to %d", flagThings, s.Things, maxThings)
	}
	if s.IdleClients == idleInProcess && s.Things > maxProcessSessions {
		return fmt.Errorf("--%s %d with --%s %s: at most %d things in one process (one socket each); the child processes of --%s %s take more",
			flagThings, s.Things, flagIdleClients, idleInProcess, maxProcessSessions, flagIdleClients, idleProcess)
	}
	if s.IdleClients != idleProcess && s.IdleClients != idleInProcess {
		return fmt.Errorf("--%s %q: want %s or %s", flagIdleClients, s.IdleClients, idleProcess, idleInProcess)
	}
	if s.GatewayMode != gwProcess && s.GatewayMode != gwInProcess {
		return fmt.Errorf("--%s %q: want %s or %s", flagGatewayMode, s.GatewayMode, gwProcess, gwInProcess)
	}
	if s.GatewayBin != "" && s.GatewayMode != gwProcess {
		return fmt.Errorf("--%s is for --%s %s", flagGatewayBin, flagGatewayMode, gwProcess)
	}
	if s.IoTEdgeBin != "" && (s.GatewayMode != gwProcess || s.IdleClients != idleProcess) {
		return fmt.Errorf("--%s compares processes: it needs --%s %s and --%s %s", flagIoTEdgeBin, flagGatewayMode, gwProcess, flagIdleClients, idleProcess)
	}
	if s.LibraryFloor && (s.GatewayMode != gwProcess || s.IdleClients != idleProcess) {
		return fmt.Errorf("--%s compares processes: it needs --%s %s and --%s %s", flagLibraryFloor, flagGatewayMode, gwProcess, flagIdleClients, idleProcess)
	}
	if s.ProfileDir != "" {
		if s.GatewayMode != gwProcess {
			return fmt.Errorf("--%s profiles the gateway process: it needs --%s %s", flagProfile, flagGatewayMode, gwProcess)
		}
		if fi, err := os.Stat(s.ProfileDir); err != nil || !fi.IsDir() {
			return fmt.Errorf("--%s %s: not a directory", flagProfile, s.ProfileDir)
		}
	}
	for _, f := range []struct{ flag, path string }{{flagGatewayBin, s.GatewayBin}, {flagIoTEdgeBin, s.IoTEdgeBin}} {
		if f.path == "" {
			continue
		}
		if fi, err := os.Stat(f.path); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			return fmt.Errorf("--%s %s: not an executable file", f.flag, f.path)
		}
	}
	if s.Soak < 0 || s.Soak > maxSoak {
		return fmt.Errorf("--%s %v: want at most %v", flagSoak, s.Soak, maxSoak)
	}
	if s.Soak > 0 {
		if s.SoakWindow == 0 {
			s.SoakWindow = min(time.Minute, s.Soak)
		}
		if s.SoakWindow < minSoakWindow || s.SoakWindow > s.Soak {
			return fmt.Errorf("--%s %v: want %v to --%s (%v)", flagSoakWindow, s.SoakWindow, minSoakWindow, flagSoak, s.Soak)
		}
		if s.SoakInterval < minSoakInterval || s.SoakInterval > s.Soak {
			return fmt.Errorf("--%s %v: want %v to --%s (%v)", flagSoakEvery, s.SoakInterval, minSoakInterval, flagSoak, s.Soak)
		}
		if s.IdleClients != idleProcess {
			return fmt.Errorf("--%s holds its idle things in a child process: it needs --%s %s", flagSoak, flagIdleClients, idleProcess)
		}
		s.SoakS, s.SoakWindowS, s.SoakEveryS = s.Soak.Seconds(), s.SoakWindow.Seconds(), s.SoakInterval.Seconds()
	}
	if err := checkLoopback(s.Address); err != nil {
		return fmt.Errorf("--%s: %w", flagAddress, err)
	}
	if err := checkLoopback(s.AMAddress); err != nil {
		return fmt.Errorf("--%s: %w", flagAMAddress, err)
	}
	return nil
}

// errNotLoopback is returned for an address gwbench refuses to use.
var errNotLoopback = errors.New("only loopback addresses (127.0.0.0/8, ::1, localhost) are allowed")

// checkLoopback accepts host:port addresses whose host is a loopback IP
// or localhost. An empty host (all interfaces) is refused.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q: %w", addr, err)
	}
	if strings.EqualFold(host, "localhost") {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("refusing %q: %w", addr, errNotLoopback)
}

// loopbackHost turns localhost into 127.0.0.1, so that the address names
// one IP and the listening network (udp4 or udp6) follows from it.
func loopbackHost(addr string) (string, string) {
	host, port, _ := net.SplitHostPort(addr)
	if strings.EqualFold(host, "localhost") {
		host = "127.0.0.1"
	}
	network := "udp4"
	if ip := net.ParseIP(host); ip != nil && ip.To4() == nil {
		network = "udp6"
	}
	return net.JoinHostPort(host, port), network
}

// portRangeFile holds the local ports Linux picks from for a connected UDP
// socket; portMargin is what gwbench keeps beside its things' sockets.
const (
	portRangeFile = "/proc/sys/net/ipv4/ip_local_port_range"
	portMargin    = 1000
)

// checkLocalPorts refuses a run that needs more local ports than the
// range in file gives: every thing's session is a UDP socket connected to
// the gateway's one address, each on a port of its own, and past the range
// dials fail with "resource temporarily unavailable". Without the file
// (not Linux) it checks nothing.
func checkLocalPorts(file string, need int) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil
	}
	var lo, hi int
	if _, err := fmt.Sscan(string(b), &lo, &hi); err != nil || hi < lo {
		return nil
	}
	if have := hi - lo + 1; need > have {
		return fmt.Errorf("--%s needs about %d local UDP ports to one gateway address, and %s gives %d (%d-%d); widen it, for example: sysctl -w net.ipv4.ip_local_port_range=\"1024 65535\"",
			flagThings, need, file, have, lo, hi)
	}
	return nil
}
