package thing

var GatewayAddress = gatewayAddress
