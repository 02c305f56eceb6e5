package storage

import (
	"bytes"
	"reflect"
	"testing"
	"time"

	"github.com/ctfed/ctfed/node"
)

func TestRecord_RoundTrip(t *testing.T) {
	full := testCase(42)
	full.ReferralSource = "ngo"
	full.TransitCountries = []string{"HUN", "SRB"}
	full.RecruiterRelations = []string{"family"}
	full.LabourTypes = []string{"agriculture"}
	full.FollowUps = []node.FollowUp{{Date: "2022-01-02", Outcome: "reached_stable"}}
	full.Identity.DateOfBirth = "1990-05"
	full.Identity.Email = "nobody@example.invalid"
	full.Identity.Address = "1 Nowhere Street"
	full.Identity.Aliases = append(full.Identity.Aliases, "Second Fakealias")
	minimal := &node.Case{Code: "M1", RegistrationDate: "2020"}
	negative := &node.Case{Code: "N1", RegistrationDate: "2020", Age: node.IntPtr(-5), MonthsInExploitation: node.IntPtr(1 << 40)}
	for _, tt := range []struct {
		name string
		c    *node.Case
	}{
		{"Full", full},
		{"Minimal", minimal},
		{"Normalized", func() *node.Case { c := testCase(3); c.Normalize(); return c }()},
		{"OddNumbers", negative},
	} {
		t.Run(tt.name, func(t *testing.T) {
			body := appendBody(nil, tt.c)
			var got node.Case
			if err := decodeBody(body, &got); err != nil {
				t.Fatal(err)
			}
			want := *tt.c
			want.Identity = node.Identity{}
			if !reflect.DeepEqual(&got, &want) {
				t.Fatalf("got %+v, want %+v", got, want)
			}
			if again := appendBody(nil, &got); !bytes.Equal(again, body) {
				t.Fatal("got a different encoding after a round trip")
			}

			var id node.Identity
			if err := decodeIdentity(appendIdentity(nil, &tt.c.Identity), &id); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(id, tt.c.Identity) {
				t.Fatal("got another identity after a round trip")
			}

			h := recordHeader{flags: flagSealed | flagErased, version: 7, updatedAt: time.Unix(1700000000, 123).UTC(),
				updatedBy: "someone", body: body, sealed: []byte("sealed bytes")}
			gotH, err := parseRecord(appendRecord(nil, &h))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(gotH, h) {
				t.Fatalf("got header %+v, want %+v", gotH, h)
			}
		})
	}
}

func TestRecord_ErrCorrupt(t *testing.T) {
	good := appendRecord(nil, &recordHeader{version: 1, updatedBy: "x", body: appendBody(nil, testCase(1))})
	for _, tt := range []struct {
		name string
		v    []byte
	}{
		{"Empty", nil},
		{"WrongFormat", append([]byte{9}, good[1:]...)},
		{"UnknownFlag", append([]byte{recordFormat, 0x80}, good[2:]...)},
		{"Truncated", good[:len(good)-1]},
		{"Trailing", append(bytes.Clone(good), 0)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h, err := parseRecord(tt.v)
			if err == nil {
				err = decodeBody(h.body, &node.Case{})
			}
			if err == nil {
				t.Fatal("got no error, want corrupt")
			}
		})
	}
}

func FuzzDecodeRecord(f *testing.F) {
	for i := range 3 {
		c := testCase(i)
		c.Normalize()
		f.Add(appendRecord(nil, &recordHeader{version: i + 1, updatedBy: "seed", body: appendBody(nil, c)}))
		f.Add(appendIdentity(nil, &c.Identity))
	}
	f.Add(appendRecord(nil, &recordHeader{flags: flagSealed, version: 1, body: appendBody(nil, &node.Case{}), sealed: []byte{1, 2, 3}}))
	f.Add([]byte{recordFormat, 0, 1, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, data []byte) {
		// Identity plaintext: decoding any input must not panic, and what
		// decodes re-encodes to the same bytes.
		var id node.Identity
		if decodeIdentity(data, &id) == nil && !bytes.Equal(appendIdentity(nil, &id), data) {
			t.Fatal("identity re-encodes differently")
		}
		h, err := parseRecord(data)
		if err != nil {
			return
		}
		var c node.Case
		if err := decodeBody(h.body, &c); err != nil {
			return
		}
		if !bytes.Equal(appendBody(nil, &c), h.body) {
			t.Fatal("body re-encodes differently")
		}
		if again, err := parseRecord(appendRecord(nil, &h)); err != nil || !reflect.DeepEqual(again, h) {
			t.Fatalf("header round trip: got %+v %v, want %+v", again, err, h)
		}
	})
}
