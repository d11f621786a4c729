package gateway

import (
	"sync"

	"github.com/pion/logging"
)

// sharedLoggers is the DTLS sessions' logger factory: pion's default one
// (levels from the PION_LOG_* environment variables, as pion does without
// a factory), with one logger per scope for all sessions. Without it pion
// makes a factory and a logger, of five log.Loggers, for every session:
// about 1 KiB each.
type sharedLoggers struct {
	once    sync.Once
	factory logging.LoggerFactory
	mu      sync.Mutex
	loggers map[string]logging.LeveledLogger
}

var dtlsLoggers = &sharedLoggers{}

// NewLogger returns the scope's logger, made on first use.
func (f *sharedLoggers) NewLogger(scope string) logging.LeveledLogger {
	f.once.Do(func() {
		f.factory = logging.NewDefaultLoggerFactory()
		f.loggers = map[string]logging.LeveledLogger{}
	})
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.loggers[scope]
	if !ok {
		l = f.factory.NewLogger(scope)
		f.loggers[scope] = l
	}
	return l
}
