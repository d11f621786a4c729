package thing

var GatewayAddress = gatewayAddress

// ErrNoAnswer is what a gateway connection returns for a request whose
// every copy went unanswered.
var ErrNoAnswer = errNoAnswer
var RunPeriodic = runPeriodic
