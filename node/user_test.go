package node_test

import (
	"strings"
	"testing"
	"time"

	"github.com/ctfed/ctfed/node"
)

func TestParseRole(t *testing.T) {
	for _, r := range node.Roles() {
		t.Run(string(r), func(t *testing.T) {
			got, err := node.ParseRole(string(r))
			if err != nil || got != r || !r.Valid() {
				t.Fatalf("got %q, %v, want %q", got, err, r)
			}
		})
	}
	for _, s := range []string{"", "Admin", "root", "contributor", "querier", "admin\n"} {
		t.Run("Invalid/"+s, func(t *testing.T) {
			if _, err := node.ParseRole(s); node.KindOf(err) != node.Invalid {
				t.Fatalf("got %v, want Invalid", err)
			}
		})
	}
}

func TestCheckUserName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"ana", true},
		{"cw-7", true},
		{"j.doe_2", true},
		{"7eleven", true},
		{strings.Repeat("a", node.MaxUserNameLen), true},
		{"", false},
		{strings.Repeat("a", node.MaxUserNameLen+1), false},
		{"Ana", false},
		{"-ana", false},
		{".ana", false},
		{"token:sync", false},
		{"ana smith", false},
		{"anä", false},
		{"ana\x00", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := node.CheckUserName(tc.name); (err == nil) != tc.ok || err != nil && node.KindOf(err) != node.Invalid {
				t.Fatalf("got %v, want ok %v", err, tc.ok)
			}
		})
	}
}

func TestCheckPassword(t *testing.T) {
	for _, tc := range []struct {
		name, password string
		ok             bool
	}{
		{"OK", "correct horse", true},
		{"TenRunes", "ääääääääää", true},
		{"Short", "123456789", false},
		{"Empty", "", false},
		{"Long", strings.Repeat("x", node.MaxPasswordLen+1), false},
		{"MaxLen", strings.Repeat("x", node.MaxPasswordLen), true},
		{"InvalidUTF8", "\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8\xf7\xf6\xf5", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := node.CheckPassword(tc.password)
			if (err == nil) != tc.ok {
				t.Fatalf("got %v, want ok %v", err, tc.ok)
			}
			if err != nil && tc.password != "" && strings.Contains(err.Error(), tc.password) {
				t.Fatal("got the password in the error")
			}
		})
	}
}

func TestTokenValid(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		tok  node.Token
		want bool
	}{
		{"NoExpiry", node.Token{}, true},
		{"BeforeExpiry", node.Token{Expires: now.Add(time.Second)}, true},
		{"AtExpiry", node.Token{Expires: now}, false},
		{"Revoked", node.Token{Revoked: true}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.tok.Valid(now); got != tc.want {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
	if got := node.TokenActor("sync"); got != "token:sync" {
		t.Fatalf("got %q, want token:sync", got)
	}
}
