// Package privacy holds ctfed's differential privacy: the noise mechanisms
// (from github.com/google/differential-privacy/go/v3), contribution bounding,
// the release rule, the combination of several nodes' noisy answers and the
// privacy-budget arithmetic.
//
// privacy is pure: no I/O, no globals beyond constants. It imports only the
// standard library and the differential privacy library, and no ctfed
// package; callers wrap its plain errors into node errors.
package privacy

import _ "github.com/google/differential-privacy/go/v3/noise"
