package storage

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/ctfed/ctfed/node"
)

// A stored case version (the value of c/<code> and h/<code>/<version>) is:
//
//	byte    record format (recordFormat)
//	byte    flags (flagErased, flagSealed)
//	uvarint version
//	varint  updated-at, Unix nanoseconds
//	string  updated-by
//	bytes   body: every field except identity (appendBody)
//	bytes   sealed identity, only with flagSealed: nonce || AES-GCM(identity)
//	bytes   wrapped identity key, only with flagKey (current versions only;
//	        see seal.go)
//
// Bytes (and updated-by) are a uvarint length and the bytes. A string of the
// body or the identity is a uvarint of its length plus one and the bytes,
// except "unknown" (the code most fields of most records hold), which is a
// single 0. A list is a uvarint count and its elements; an optional number
// is a presence byte and a varint. The encoding is canonical, so two cases
// with the same content have the same body bytes.
const recordFormat = 1

const (
	flagErased = 1 << iota // the identity was erased
	flagSealed             // a sealed identity follows the body
	flagKey                // the case's wrapped identity key follows
)

var errCorrupt = errors.New("stored record is corrupt")

// recordHeader is a decoded record minus its body's fields.
type recordHeader struct {
	flags     byte
	version   int
	updatedAt time.Time
	updatedBy string
	body      []byte // encoded body, aliasing the record
	sealed    []byte // sealed identity, aliasing the record; nil without flagSealed
	wrapped   []byte // wrapped identity key, aliasing the record; nil without flagKey
}

func appendRecord(b []byte, h *recordHeader) []byte {
	b = append(b, recordFormat, h.flags)
	b = binary.AppendUvarint(b, uint64(h.version))
	b = binary.AppendVarint(b, h.updatedAt.UnixNano())
	b = binary.AppendUvarint(b, uint64(len(h.updatedBy)))
	b = append(b, h.updatedBy...)
	b = appendBytes(b, h.body)
	if h.flags&flagSealed != 0 {
		b = appendBytes(b, h.sealed)
	}
	if h.flags&flagKey != 0 {
		b = appendBytes(b, h.wrapped)
	}
	return b
}

func parseRecord(v []byte) (recordHeader, error) {
	var h recordHeader
	d := decoder{b: v}
	if d.byte() != recordFormat {
		return h, errCorrupt
	}
	h.flags = d.byte()
	h.version = int(d.uvarint())
	h.updatedAt = time.Unix(0, d.varint()).UTC()
	h.updatedBy = string(d.bytes())
	h.body = d.bytes()
	if h.flags&flagSealed != 0 {
		h.sealed = d.bytes()
	}
	if h.flags&flagKey != 0 {
		h.wrapped = d.bytes()
	}
	if d.err != nil || len(d.b) != 0 || h.flags&^(flagErased|flagSealed|flagKey) != 0 || h.version < 1 {
		return h, errCorrupt
	}
	return h, nil
}

// appendBody appends every field of c except identity and the store's own
// fields (Version, UpdatedAt, UpdatedBy, IdentityErased).
func appendBody(b []byte, c *node.Case) []byte {
	b = appendString(b, c.Code)
	b = appendString(b, string(c.RegistrationDate))
	b = appendString(b, c.Status)
	b = appendString(b, c.ReferralSource)
	b = appendString(b, c.DataSource)
	b = appendString(b, c.Caseworker)

	b = appendString(b, c.Gender)
	b = appendInt(b, c.Age)
	b = appendString(b, c.AgeBand)
	b = appendString(b, c.Majority)
	b = appendInt(b, c.AgeAtExploitation)
	b = appendString(b, c.AgeBandExploitation)
	b = appendString(b, c.MajorityAtExploitation)
	b = appendString(b, c.Citizenship)
	b = appendString(b, c.CountryOfResidence)
	b = appendString(b, c.Education)
	b = appendString(b, c.MaritalStatus)
	b = appendString(b, c.OccupationBefore)

	b = appendString(b, c.CountryOfOrigin)
	b = appendStrings(b, c.TransitCountries)
	b = appendString(b, c.CountryOfExploitation)
	b = appendString(b, c.RecruitmentType)
	b = appendStrings(b, c.RecruiterRelations)
	b = appendStrings(b, c.MeansOfControl)
	b = appendInt(b, c.MonthsInExploitation)
	b = appendString(b, c.MonthsBand)
	b = appendStrings(b, c.ExploitationTypes)
	b = appendStrings(b, c.LabourTypes)
	b = appendStrings(b, c.SexualExploitationTypes)

	b = binary.AppendUvarint(b, uint64(len(c.Traffickers)))
	for _, t := range c.Traffickers {
		b = appendString(b, t.Sex)
		b = appendString(b, t.Nationality)
		b = appendString(b, t.Role)
		b = appendString(b, t.Relation)
	}
	b = binary.AppendUvarint(b, uint64(len(c.Assistance)))
	for _, s := range c.Assistance {
		b = appendString(b, s.Service)
		b = appendString(b, string(s.Date))
		b = appendString(b, s.Provider)
	}
	b = appendString(b, c.ReturnStatus)
	b = appendString(b, c.ReintegrationStatus)
	b = binary.AppendUvarint(b, uint64(len(c.FollowUps)))
	for _, f := range c.FollowUps {
		b = appendString(b, string(f.Date))
		b = appendString(b, f.Outcome)
	}

	b = appendString(b, c.PreviouslyTrafficked)
	b = appendString(b, c.Retrafficked)
	b = appendString(b, c.Consent)
	b = appendString(b, string(c.ConsentDate))
	return b
}

// decodeBody fills c's non-identity fields from a body. Strings alias one
// copy of the body, made once.
func decodeBody(body []byte, c *node.Case) error {
	d := decoder{b: body, s: string(body)}
	c.Code = d.str()
	c.RegistrationDate = node.Date(d.str())
	c.Status = d.str()
	c.ReferralSource = d.str()
	c.DataSource = d.str()
	c.Caseworker = d.str()

	c.Gender = d.str()
	c.Age = d.int()
	c.AgeBand = d.str()
	c.Majority = d.str()
	c.AgeAtExploitation = d.int()
	c.AgeBandExploitation = d.str()
	c.MajorityAtExploitation = d.str()
	c.Citizenship = d.str()
	c.CountryOfResidence = d.str()
	c.Education = d.str()
	c.MaritalStatus = d.str()
	c.OccupationBefore = d.str()

	c.CountryOfOrigin = d.str()
	c.TransitCountries = d.strs()
	c.CountryOfExploitation = d.str()
	c.RecruitmentType = d.str()
	c.RecruiterRelations = d.strs()
	c.MeansOfControl = d.strs()
	c.MonthsInExploitation = d.int()
	c.MonthsBand = d.str()
	c.ExploitationTypes = d.strs()
	c.LabourTypes = d.strs()
	c.SexualExploitationTypes = d.strs()

	if n := d.count(4); n > 0 {
		c.Traffickers = make([]node.Trafficker, n)
		for i := range c.Traffickers {
			t := &c.Traffickers[i]
			t.Sex, t.Nationality, t.Role, t.Relation = d.str(), d.str(), d.str(), d.str()
		}
	} else {
		c.Traffickers = nil
	}
	if n := d.count(3); n > 0 {
		c.Assistance = make([]node.Service, n)
		for i := range c.Assistance {
			s := &c.Assistance[i]
			s.Service, s.Date, s.Provider = d.str(), node.Date(d.str()), d.str()
		}
	} else {
		c.Assistance = nil
	}
	c.ReturnStatus = d.str()
	c.ReintegrationStatus = d.str()
	if n := d.count(2); n > 0 {
		c.FollowUps = make([]node.FollowUp, n)
		for i := range c.FollowUps {
			f := &c.FollowUps[i]
			f.Date, f.Outcome = node.Date(d.str()), d.str()
		}
	} else {
		c.FollowUps = nil
	}

	c.PreviouslyTrafficked = d.str()
	c.Retrafficked = d.str()
	c.Consent = d.str()
	c.ConsentDate = node.Date(d.str())
	if d.err != nil || len(d.b) != 0 {
		return errCorrupt
	}
	return nil
}

// appendIdentity appends the identity fields; this is the plaintext that
// is sealed under the case's identity key.
func appendIdentity(b []byte, id *node.Identity) []byte {
	b = appendString(b, id.FullName)
	b = appendStrings(b, id.Aliases)
	b = appendString(b, string(id.DateOfBirth))
	b = appendString(b, id.Phone)
	b = appendString(b, id.Email)
	b = appendString(b, id.Address)
	b = appendStrings(b, id.Documents)
	b = appendString(b, id.Narrative)
	return b
}

func decodeIdentity(b []byte, id *node.Identity) error {
	d := decoder{b: b, s: string(b)}
	id.FullName = d.str()
	id.Aliases = d.strs()
	id.DateOfBirth = node.Date(d.str())
	id.Phone = d.str()
	id.Email = d.str()
	id.Address = d.str()
	id.Documents = d.strs()
	id.Narrative = d.str()
	if d.err != nil || len(d.b) != 0 {
		return errCorrupt
	}
	return nil
}

func appendString(b []byte, s string) []byte {
	if s == node.CodeUnknown {
		return append(b, 0)
	}
	b = binary.AppendUvarint(b, uint64(len(s))+1)
	return append(b, s...)
}

func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

func appendStrings(b []byte, ss []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(ss)))
	for _, s := range ss {
		b = appendString(b, s)
	}
	return b
}

func appendInt(b []byte, p *int) []byte {
	if p == nil {
		return append(b, 0)
	}
	b = append(b, 1)
	return binary.AppendVarint(b, int64(*p))
}

// decoder reads the encoding above. The first error sticks; reads after it
// return zero values. s, when set, is a string copy of the whole input that
// str slices instead of allocating each string.
type decoder struct {
	b   []byte
	s   string
	err error
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = errCorrupt
	}
	d.b = nil
}

func (d *decoder) byte() byte {
	if len(d.b) < 1 {
		d.fail()
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

// uvarint reads a uvarint in its one, shortest encoding: a longer one
// (a last byte of 0 after others) is corrupt, so that every stored value
// has exactly one byte form.
func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 || (n > 1 && d.b[n-1] == 0) {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 || (n > 1 && d.b[n-1] == 0) {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a list length, bounded by what the rest of the input can
// hold with at least minBytes bytes per element.
func (d *decoder) count(minBytes int) int {
	n := d.uvarint()
	if n > uint64(len(d.b)/minBytes) {
		d.fail()
		return 0
	}
	return int(n)
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail()
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) str() string {
	n := d.uvarint()
	switch {
	case d.err != nil:
		return ""
	case n == 0:
		return node.CodeUnknown
	case n-1 > uint64(len(d.b)):
		d.fail()
		return ""
	case n == 1:
		return ""
	}
	n--
	off := len(d.s) - len(d.b)
	d.b = d.b[n:]
	s := d.s[off : off+int(n)]
	if s == node.CodeUnknown {
		d.fail() // not canonical: "unknown" is written as 0
		return ""
	}
	return s
}

func (d *decoder) strs() []string {
	n := d.count(1)
	if n == 0 {
		return nil
	}
	out := make([]string, n)
	for i := range out {
		out[i] = d.str()
	}
	return out
}

func (d *decoder) int() *int {
	switch d.byte() {
	case 0:
		return nil
	case 1:
		v := int(d.varint())
		return &v
	default:
		d.fail()
		return nil
	}
}
