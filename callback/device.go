package callback

import (
	"encoding/json"
	"fmt"
)

// DeviceAuthorization is AM's answer to a user code request: an OAuth 2.0
// device authorization response (RFC 8628 §3.2). The thing SDK and the
// HTTP client both return it.
type DeviceAuthorization struct {
	// DeviceCode is what the thing presents when it polls for the user's
	// token.
	DeviceCode string `json:"device_code"`
	// UserCode is the code the user enters.
	UserCode string `json:"user_code"`
	// VerificationURI is where the user goes to approve.
	VerificationURI string `json:"verification_uri"`
	// VerificationURIComplete is VerificationURI with the user code.
	VerificationURIComplete string `json:"verification_uri_complete,omitempty"`
	// ExpiresIn is the lifetime of the codes in seconds.
	ExpiresIn int64 `json:"expires_in"`
	// Interval is the minimum number of seconds between polls; 0 means 5.
	Interval int64 `json:"interval,omitempty"`
	// Raw is AM's answer as it arrived.
	Raw json.RawMessage `json:"-"`
}

// UnmarshalJSON accepts expires_in and interval as any JSON number
// (see [Seconds]).
func (d *DeviceAuthorization) UnmarshalJSON(b []byte) error {
	type plain DeviceAuthorization
	var v struct {
		plain
		ExpiresIn json.Number `json:"expires_in"`
		Interval  json.Number `json:"interval"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*d = DeviceAuthorization(v.plain)
	var err error
	if d.ExpiresIn, err = Seconds(v.ExpiresIn); err != nil {
		return fmt.Errorf("expires_in: %w", err)
	}
	if d.Interval, err = Seconds(v.Interval); err != nil {
		return fmt.Errorf("interval: %w", err)
	}
	return nil
}
