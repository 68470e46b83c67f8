package api

import (
	"net/http"

	"lobby/internal/httpjson"
	"lobby/internal/lobby"
	"lobby/internal/manage"
)

// listNodes answers the cluster's nodes, in one page (a cluster has few).
func (s *Server) listNodes(w http.ResponseWriter, r *http.Request) error {
	ns, err := s.manager().Nodes(r.Context(), actor(r))
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, list[manage.NodeView]{Items: ns})
	return nil
}

// nodeAction drains a node or resumes it.
func (s *Server) nodeAction(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Action string `json:"action"`
	}
	if err := httpjson.Decode(w, r, &in); err != nil {
		return err
	}
	mode := map[string]lobby.NodeMode{"drain": lobby.NodeDraining, "resume": lobby.NodeNormal}[in.Action]
	if mode == "" {
		return lobby.FieldErrorf("action", "action %q is not valid: use drain or resume (to remove a dead node, DELETE it)", in.Action)
	}
	if err := s.manager().SetNodeMode(r.Context(), actor(r), r.PathValue("site"), mode); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) removeNode(w http.ResponseWriter, r *http.Request) error {
	if err := s.manager().RemoveNode(r.Context(), actor(r), r.PathValue("site")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
