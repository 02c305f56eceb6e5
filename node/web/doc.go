// Package web is a ctfed node's web application and JSON API, served by
// `ctfed serve` on one listener (127.0.0.1:8080 by default; TLS only on any
// other address).
//
// People sign in with a user name and password (node.UserStore: argon2id
// hashes, sessions kept server-side by hash) and get a session cookie
// (HttpOnly, SameSite=Strict, Secure under TLS); programs send an API token
// as "Authorization: Bearer …". Every page and endpoint except the sign-in
// page and the stylesheet needs one or the other, and each route names the
// roles (node.Role) that may use it: others get 403, and a request without
// a session is sent to the sign-in page (HTML) or answered 401 (API). Every
// form carries the session's CSRF token and every POST checks it; sign-in
// is rate-limited per user name and per remote address; every response
// carries a strict Content-Security-Policy (no inline scripts or styles,
// no framing) and the other security headers.
//
// Caseworkers and admins manage cases: a paged, filtered list; a case's
// page; the Screening and Assistance forms, generated from the codebook
// (node.Codebook.Fields: labels, groups and code lists), validated on the
// server with a message beside each field and a summary at the top,
// keeping what was typed, and working without JavaScript; and a case's
// history. A case's identity fields are shown only to the caseworker
// assigned to it (node.Case.Caseworker) and to admins; another caseworker
// sees the case without them and may "break the glass" by stating a
// reason, which is written to the audit log before the identity is shown.
// Every view of a case and every change is written to the node's audit log
// (node.AuditLog) with the user. The JSON API under /api/ offers the same
// case operations and is described by openapi.yaml, served at
// /api/openapi.yaml. API errors are JSON objects {kind, message}; an
// internal error's text is never sent, only its kind's fixed message.
//
// Templates, the stylesheet and the OpenAPI document are embedded in the
// binary: nothing is loaded from elsewhere.
//
// web imports node, privacy (to describe and release answers), node/casefile
// (imports and exports), the standard library and zap for logging (bar
// charts are written as inline SVG by chart.go); it never imports storage,
// federation or config: cmd/ctfed hands it the node's stores and its
// federation as interfaces.
package web
