package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ctfed/ctfed/node"
)

// The users and API tokens of the node, for admins. node.UserStore writes
// the audit entries of every change to a user or a token itself.

// roleHelp says what each role may do, for the forms.
var roleHelp = map[node.Role]string{
	node.RoleAdmin:      "users, API tokens, import and export, every case with its identity",
	node.RoleCaseworker: "records and edits cases",
	node.RoleAnalyst:    "the node's own statistics and federated queries",
	node.RoleAuditor:    "the audit log, read only",
}

type roleOption struct {
	Value node.Role
	Label string
}

func roleOptions() []roleOption {
	var out []roleOption
	for _, r := range node.Roles() {
		out = append(out, roleOption{Value: r, Label: fmt.Sprintf("%s: %s", r, roleHelp[r])})
	}
	return out
}

// errText returns the cause of an Invalid, NotFound or Conflict error as
// a sentence for people: the store and node's checks name fields and
// rules, never a password or an identity field. Other kinds give their
// fixed message.
func errText(err error) string {
	if clientKind(err) {
		// The innermost node.Error with a cause holds the rule broken,
		// without the operations around it.
		var cause error
		for e := err; ; {
			var ne *node.Error
			if !errors.As(e, &ne) || ne.Err == nil {
				break
			}
			cause, e = ne.Err, ne.Err
		}
		if cause != nil {
			return sentence(cause.Error())
		}
	}
	return sentence(node.KindOf(err).Message())
}

// lowerInitial returns s with its first letter in lower case.
func lowerInitial(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}

// clientKind reports whether err is of a kind whose cause may be told to
// the person or program that asked: Invalid, NotFound or Conflict.
func clientKind(err error) bool {
	switch node.KindOf(err) {
	case node.Invalid, node.NotFound, node.Conflict:
		return true
	}
	return false
}

// adminGuard refuses a change that would leave the node without an
// enabled admin, or an admin disabling or demoting their own account
// (Conflict). disable and role say what the change does; role is empty
// when the role stays.
func (s *Server) adminGuard(ctx context.Context, p *principal, target *node.User, disable bool, role node.Role) error {
	const op = "web.adminGuard"
	losesAdmin := target.Role == node.RoleAdmin && !target.Disabled && (disable || role != "" && role != node.RoleAdmin)
	if !losesAdmin {
		return nil
	}
	if !p.Token && target.Name == p.Name {
		if disable {
			return node.E(op, node.Conflict, "you may not disable your own account")
		}
		return node.E(op, node.Conflict, "you may not take the admin role from your own account")
	}
	users, err := s.Users.Users(ctx)
	if err != nil {
		return err
	}
	admins := 0
	for _, u := range users {
		if u.Role == node.RoleAdmin && !u.Disabled {
			admins++
		}
	}
	if admins <= 1 {
		return node.E(op, node.Conflict, "the node needs at least one enabled admin")
	}
	return nil
}

// userChange is a change to one user: any of disabling or enabling, a
// new role and a new password.
type userChange struct {
	Disabled *bool
	Role     node.Role
	Password string
}

// changeUser checks and applies c to the user named name, as p. Every
// part is checked before any is written. Returns Invalid, NotFound or
// Conflict.
func (s *Server) changeUser(ctx context.Context, p *principal, name string, c userChange) (*node.User, error) {
	const op = "web.changeUser"
	if c.Disabled == nil && c.Role == "" && c.Password == "" {
		return nil, node.E(op, node.Invalid, "nothing to change: give disabled, role or password")
	}
	if c.Role != "" && !c.Role.Valid() {
		_, err := node.ParseRole(string(c.Role))
		return nil, err
	}
	if c.Password != "" {
		if err := node.CheckPassword(c.Password); err != nil {
			return nil, err
		}
	}
	u, err := s.Users.User(ctx, name)
	if err != nil {
		return nil, err
	}
	if err := s.adminGuard(ctx, p, u, c.Disabled != nil && *c.Disabled, c.Role); err != nil {
		return nil, err
	}
	if c.Role != "" && c.Role != u.Role {
		if err := s.Users.SetUserRole(ctx, name, c.Role, p.Name); err != nil {
			return nil, err
		}
	}
	if c.Password != "" {
		if err := s.Users.SetPassword(ctx, name, c.Password, p.Name); err != nil {
			return nil, err
		}
	}
	if c.Disabled != nil && *c.Disabled != u.Disabled {
		if err := s.Users.SetUserDisabled(ctx, name, *c.Disabled, p.Name); err != nil {
			return nil, err
		}
	}
	return s.Users.User(ctx, name)
}

// The users page.

type userRow struct {
	Name, Role, Created, CreatedBy, Updated, UpdatedBy string
	Disabled, Self                                     bool
	Error                                              string
}

type userForm struct {
	Name, Role                    string
	NameErr, RoleErr, PasswordErr string
}

type usersData struct {
	Users  []userRow
	Roles  []roleOption
	New    userForm
	Errors []formError
	Notice string
	// Problem is a refused change to a listed user.
	Problem string
	MinPass int
}

func dateTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// userNotices are the notices the users page shows after a change.
var userNotices = map[string]string{
	"created":  "The user %s was added.",
	"disabled": "The user %s was disabled: their sessions have ended.",
	"enabled":  "The user %s was enabled.",
	"role":     "The role of %s was changed: their sessions have ended.",
	"password": "The password of %s was reset: their sessions have ended.",
}

func (s *Server) renderUsers(w http.ResponseWriter, r *http.Request, p *principal, status int, d usersData) {
	users, err := s.Users.Users(r.Context())
	if err != nil {
		s.pageError(w, r, p, err)
		return
	}
	d.Roles, d.MinPass = roleOptions(), node.MinPasswordLen
	if d.New.Role == "" {
		d.New.Role = string(node.RoleCaseworker)
	}
	for _, u := range users {
		d.Users = append(d.Users, userRow{Name: u.Name, Role: string(u.Role), Disabled: u.Disabled, Self: u.Name == p.Name,
			Created: dateTime(u.Created), CreatedBy: u.CreatedBy, Updated: dateTime(u.Updated), UpdatedBy: u.UpdatedBy})
	}
	s.render(w, r, status, "admin_users", &pageData{Title: "Users", User: p, Data: adminPage{Sub: adminSub(r.URL.Path), Data: d}})
}

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request, p *principal) {
	var d usersData
	q := r.URL.Query()
	if f, ok := userNotices[q.Get("done")]; ok && node.CheckUserName(q.Get("user")) == nil {
		d.Notice = fmt.Sprintf(f, q.Get("user"))
	}
	s.renderUsers(w, r, p, http.StatusOK, d)
}

// createUser adds a user from the form. The password is never shown
// again, not even on an error.
func (s *Server) createUser(w http.ResponseWriter, r *http.Request, p *principal) {
	ctx := r.Context()
	v := r.PostForm
	f := userForm{Name: strings.TrimSpace(v.Get("name")), Role: v.Get("role")}
	password := v.Get("password")
	var d usersData
	if err := node.CheckUserName(f.Name); err != nil {
		f.NameErr = errText(err)
		d.Errors = append(d.Errors, formError{Href: "#new-name", Text: "User name: " + f.NameErr})
	}
	role, err := node.ParseRole(f.Role)
	if err != nil {
		f.RoleErr = "Choose one of the roles."
		d.Errors = append(d.Errors, formError{Href: "#new-role", Text: "Role: " + f.RoleErr})
	}
	if err := node.CheckPassword(password); err != nil {
		f.PasswordErr = errText(err)
		d.Errors = append(d.Errors, formError{Href: "#new-password", Text: "Password: " + f.PasswordErr})
	}
	if len(d.Errors) == 0 {
		_, err = s.Users.CreateUser(ctx, f.Name, role, password, p.Name)
		switch {
		case err == nil:
			http.Redirect(w, r, "/admin/users?done=created&user="+url.QueryEscape(f.Name), http.StatusSeeOther)
			return
		case node.KindOf(err) == node.Conflict:
			f.NameErr = "This name is taken: choose another."
		case node.KindOf(err) == node.Invalid:
			f.NameErr = errText(err)
		default:
			s.pageError(w, r, p, err)
			return
		}
		d.Errors = append(d.Errors, formError{Href: "#new-name", Text: "User name: " + f.NameErr})
	}
	d.New = f
	status := http.StatusBadRequest
	if f.NameErr == "This name is taken: choose another." {
		status = http.StatusConflict
	}
	s.renderUsers(w, r, p, status, d)
}

// updateUser applies one action of the users page to one user: disable,
// enable, role or password.
func (s *Server) updateUser(w http.ResponseWriter, r *http.Request, p *principal) {
	ctx := r.Context()
	name := r.PathValue("name")
	v := r.PostForm
	var c userChange
	action := v.Get("action")
	switch action {
	case "disable", "enable":
		disabled := action == "disable"
		c.Disabled = &disabled
	case "role":
		c.Role = node.Role(v.Get("role"))
		if !c.Role.Valid() {
			s.renderUsers(w, r, p, http.StatusBadRequest, usersData{Problem: fmt.Sprintf("%s was not changed: choose one of the roles.", name)})
			return
		}
	case "password":
		c.Password = v.Get("password")
		if c.Password == "" {
			s.renderUsers(w, r, p, http.StatusBadRequest, usersData{Problem: fmt.Sprintf("Type the new password of %s.", name)})
			return
		}
	default:
		s.pageFail(w, r, p, http.StatusBadRequest, "There is no such action.")
		return
	}
	_, err := s.changeUser(ctx, p, name, c)
	if err != nil {
		if !clientKind(err) {
			s.pageError(w, r, p, err)
			return
		}
		if node.KindOf(err) == node.NotFound {
			s.pageFail(w, r, p, http.StatusNotFound, "There is no such user.")
			return
		}
		s.renderUsers(w, r, p, statusOf(node.KindOf(err)), usersData{Problem: fmt.Sprintf("%s was not changed: %s", name, lowerInitial(errText(err)))})
		return
	}
	if !p.Token && name == p.Name && action == "password" {
		// Resetting one's own password ends one's own session too.
		http.Redirect(w, r, "/login?next="+url.QueryEscape("/admin/users"), http.StatusSeeOther)
		return
	}
	done := action
	if action == "disable" {
		done = "disabled"
	} else if action == "enable" {
		done = "enabled"
	}
	http.Redirect(w, r, "/admin/users?done="+done+"&user="+url.QueryEscape(name), http.StatusSeeOther)
}

// The API tokens page.

type tokenRow struct {
	ID, Name, Role, Created, CreatedBy, Expires, Status string
	Active                                              bool
}

type tokenForm struct {
	Name, Role, Expires          string
	NameErr, RoleErr, ExpiresErr string
}

type tokensData struct {
	Tokens []tokenRow
	Roles  []roleOption
	New    tokenForm
	Errors []formError
	Notice string
	// Secret is a token just created, shown this once.
	Secret, SecretName string
}

func (s *Server) renderTokens(w http.ResponseWriter, r *http.Request, p *principal, status int, d tokensData) {
	tokens, err := s.Users.Tokens(r.Context())
	if err != nil {
		s.pageError(w, r, p, err)
		return
	}
	d.Roles = roleOptions()
	if d.New.Role == "" {
		d.New.Role = string(node.RoleCaseworker)
	}
	now := s.Now()
	for i := len(tokens) - 1; i >= 0; i-- { // newest first
		t := tokens[i]
		row := tokenRow{ID: t.ID, Name: t.Name, Role: string(t.Role), Created: dateTime(t.Created), CreatedBy: t.CreatedBy,
			Expires: dateTime(t.Expires), Active: t.Valid(now), Status: "active"}
		switch {
		case t.Revoked:
			row.Status = "revoked " + dateTime(t.RevokedAt) + " by " + t.RevokedBy
		case !t.Valid(now):
			row.Status = "expired"
		}
		d.Tokens = append(d.Tokens, row)
	}
	s.render(w, r, status, "admin_tokens", &pageData{Title: "API tokens", User: p, Data: adminPage{Sub: adminSub(r.URL.Path), Data: d}})
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request, p *principal) {
	var d tokensData
	if r.URL.Query().Get("done") == "revoked" {
		d.Notice = "The token was revoked: it no longer works."
	}
	s.renderTokens(w, r, p, http.StatusOK, d)
}

// parseExpiry reads a token's expiry date (YYYY-MM-DD, UTC): the token
// works until the end of that day. Empty is never.
func parseExpiry(v string, now time.Time) (time.Time, string) {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Time{}, ""
	}
	d, err := time.Parse("2006-01-02", v)
	if err != nil {
		return time.Time{}, "Write the date as YYYY-MM-DD, or leave it empty for a token that works until it is revoked."
	}
	end := d.Add(24 * time.Hour)
	if !end.After(now) {
		return time.Time{}, "The date is in the past."
	}
	return end, ""
}

// createToken makes an API token from the form and shows its secret once.
func (s *Server) createToken(w http.ResponseWriter, r *http.Request, p *principal) {
	ctx := r.Context()
	v := r.PostForm
	f := tokenForm{Name: strings.TrimSpace(v.Get("name")), Role: v.Get("role"), Expires: strings.TrimSpace(v.Get("expires"))}
	var d tokensData
	if err := node.CheckUserName(f.Name); err != nil {
		f.NameErr = errText(err)
		d.Errors = append(d.Errors, formError{Href: "#token-name", Text: "Name: " + f.NameErr})
	}
	role, err := node.ParseRole(f.Role)
	if err != nil {
		f.RoleErr = "Choose one of the roles."
		d.Errors = append(d.Errors, formError{Href: "#token-role", Text: "Role: " + f.RoleErr})
	}
	expires, msg := parseExpiry(f.Expires, s.Now())
	if msg != "" {
		f.ExpiresErr = msg
		d.Errors = append(d.Errors, formError{Href: "#token-expires", Text: "Expires: " + msg})
	}
	if len(d.Errors) > 0 {
		d.New = f
		s.renderTokens(w, r, p, http.StatusBadRequest, d)
		return
	}
	secret, t, err := s.Users.CreateToken(ctx, f.Name, role, expires, p.Name)
	if err != nil {
		if node.KindOf(err) != node.Invalid {
			s.pageError(w, r, p, err)
			return
		}
		d.New = f
		d.Errors = []formError{{Text: errText(err)}}
		s.renderTokens(w, r, p, http.StatusBadRequest, d)
		return
	}
	d.Secret, d.SecretName = secret, t.Name
	s.renderTokens(w, r, p, http.StatusCreated, d)
}

func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request, p *principal) {
	err := s.Users.RevokeToken(r.Context(), r.PathValue("id"), p.Name)
	switch node.KindOf(err) {
	case node.Unknown:
		http.Redirect(w, r, "/admin/tokens?done=revoked", http.StatusSeeOther)
	case node.NotFound:
		s.pageFail(w, r, p, http.StatusNotFound, "There is no such token.")
	default:
		s.pageError(w, r, p, err)
	}
}

// The users and tokens API.

// apiUser is a user as the API shows it: never a password hash.
type apiUser struct {
	Name      string    `json:"name"`
	Role      node.Role `json:"role"`
	Disabled  bool      `json:"disabled"`
	Created   time.Time `json:"created"`
	CreatedBy string    `json:"created_by"`
	Updated   time.Time `json:"updated,omitzero"`
	UpdatedBy string    `json:"updated_by,omitempty"`
}

func toAPIUser(u *node.User) *apiUser {
	return &apiUser{Name: u.Name, Role: u.Role, Disabled: u.Disabled, Created: u.Created, CreatedBy: u.CreatedBy,
		Updated: u.Updated, UpdatedBy: u.UpdatedBy}
}

type apiUserList struct {
	Users []*apiUser `json:"users"`
}

type apiUserBody struct {
	User *apiUser `json:"user"`
}

// apiNewUser is the body that creates a user.
type apiNewUser struct {
	Name     string    `json:"name"`
	Role     node.Role `json:"role"`
	Password string    `json:"password"`
}

// apiUserChange is the body that changes a user: any of its fields.
type apiUserChange struct {
	Disabled *bool     `json:"disabled,omitempty"`
	Role     node.Role `json:"role,omitempty"`
	Password string    `json:"password,omitempty"`
}

type apiTokenList struct {
	Tokens []*node.Token `json:"tokens"`
}

type apiTokenBody struct {
	Token *node.Token `json:"token"`
}

// apiNewToken is the body that creates an API token.
type apiNewToken struct {
	Name    string    `json:"name"`
	Role    node.Role `json:"role"`
	Expires time.Time `json:"expires,omitzero"`
}

// apiCreatedToken is a new token with its secret, sent this once.
type apiCreatedToken struct {
	Token  *node.Token `json:"token"`
	Secret string      `json:"secret"`
}

// apiClientError answers err with its cause when the caller may be told
// it, else the kind's fixed message.
func (s *Server) apiClientError(w http.ResponseWriter, r *http.Request, err error) {
	msg := ""
	if clientKind(err) {
		msg = strings.TrimSuffix(lowerInitial(errText(err)), ".")
	}
	s.apiError(w, r, err, msg)
}

func (s *Server) apiListUsers(w http.ResponseWriter, r *http.Request, p *principal) {
	users, err := s.Users.Users(r.Context())
	if err != nil {
		s.apiError(w, r, err, "")
		return
	}
	out := apiUserList{Users: []*apiUser{}}
	for _, u := range users {
		out.Users = append(out.Users, toAPIUser(u))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) apiCreateUser(w http.ResponseWriter, r *http.Request, p *principal) {
	ctx := r.Context()
	var body apiNewUser
	if err := decodeJSON(w, r, &body); err != nil {
		s.apiInvalid(w, r, err)
		return
	}
	for _, check := range []func() error{
		func() error { return node.CheckUserName(body.Name) },
		func() error { _, err := node.ParseRole(string(body.Role)); return err },
		func() error { return node.CheckPassword(body.Password) },
	} {
		if err := check(); err != nil {
			s.apiClientError(w, r, err)
			return
		}
	}
	u, err := s.Users.CreateUser(ctx, body.Name, body.Role, body.Password, p.Name)
	if err != nil {
		if node.KindOf(err) == node.Conflict {
			s.apiError(w, r, err, "a user with this name exists")
			return
		}
		s.apiClientError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, apiUserBody{User: toAPIUser(u)})
}

func (s *Server) apiUpdateUser(w http.ResponseWriter, r *http.Request, p *principal) {
	var body apiUserChange
	if err := decodeJSON(w, r, &body); err != nil {
		s.apiInvalid(w, r, err)
		return
	}
	u, err := s.changeUser(r.Context(), p, r.PathValue("name"), userChange(body))
	if err != nil {
		if node.KindOf(err) == node.NotFound {
			s.apiError(w, r, err, "there is no such user")
			return
		}
		s.apiClientError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, apiUserBody{User: toAPIUser(u)})
}

func (s *Server) apiListTokens(w http.ResponseWriter, r *http.Request, p *principal) {
	tokens, err := s.Users.Tokens(r.Context())
	if err != nil {
		s.apiError(w, r, err, "")
		return
	}
	if tokens == nil {
		tokens = []*node.Token{}
	}
	writeJSON(w, http.StatusOK, apiTokenList{Tokens: tokens})
}

func (s *Server) apiCreateToken(w http.ResponseWriter, r *http.Request, p *principal) {
	var body apiNewToken
	if err := decodeJSON(w, r, &body); err != nil {
		s.apiInvalid(w, r, err)
		return
	}
	for _, check := range []func() error{
		func() error { return node.CheckUserName(body.Name) },
		func() error { _, err := node.ParseRole(string(body.Role)); return err },
	} {
		if err := check(); err != nil {
			s.apiClientError(w, r, err)
			return
		}
	}
	secret, t, err := s.Users.CreateToken(r.Context(), body.Name, body.Role, body.Expires, p.Name)
	if err != nil {
		s.apiClientError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, apiCreatedToken{Token: t, Secret: secret})
}

func (s *Server) apiRevokeToken(w http.ResponseWriter, r *http.Request, p *principal) {
	ctx := r.Context()
	id := r.PathValue("id")
	if err := s.Users.RevokeToken(ctx, id, p.Name); err != nil {
		if node.KindOf(err) == node.NotFound {
			s.apiError(w, r, err, "there is no such token")
			return
		}
		s.apiError(w, r, err, "")
		return
	}
	tokens, err := s.Users.Tokens(ctx)
	if err != nil {
		s.apiError(w, r, err, "")
		return
	}
	for _, t := range tokens {
		if t.ID == id {
			writeJSON(w, http.StatusOK, apiTokenBody{Token: t})
			return
		}
	}
	s.apiFail(w, http.StatusNotFound, node.NotFound, "there is no such token")
}
