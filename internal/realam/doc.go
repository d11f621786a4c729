// Package realam holds the tests that check Thingway against a real AM:
// built only with -tags realam, they run the thing SDK's flows, directly
// over HTTP and through an in-process gateway over CoAP/DTLS, against the
// AM at $THINGWAY_AM_URL, configured as the IoT evaluation guide says
// (README, "Checked against real AM"). They are the same flows the local
// AM (amclient/amtest) answers in the other tests, so a difference between
// the two shows up as one of these failing. The package has no code of
// its own.
package realam
