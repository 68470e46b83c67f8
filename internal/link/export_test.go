package link

// Dozing reports whether the node's reader of a host's link dozes now
// (doze.go), for the tests of package link_test.
func (h *Hub) Dozing(hostID string) bool {
	h.mu.Lock()
	l := h.leaves[hostID]
	h.mu.Unlock()
	return l != nil && l.watch != nil && l.watch.ws.dz.dozing.Load()
}
